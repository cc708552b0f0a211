"""POST /webhooks/complycube: the transport around the intake (service/intake.py), each guard
with its own answer.

1. body over the limit          413  (Content-Length checked first, then counted while streaming)
   body not all sent in time    408  (a stalled or trickling client)
2. signature missing or wrong   401  (missing or malformed: before the body is read; else on the
                                     raw bytes, constant time, any configured secret)
3. cannot be read               202  quarantined: kept whole for a replay (a 4xx would make
                                     ComplyCube retry and, after the 10th failed retry, disable
                                     the webhook)
4. not about a session or check 200  ignored, not queued (for the same reason)
5. event id already accepted    200  duplicate, not queued again
6. queued                       202
7. Redis could not take it      503  nothing kept or marked seen, so ComplyCube's retry succeeds later
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import JSONResponse

from service.errors import BodyTimeout, PayloadTooLarge, QueueUnavailable, RejectedRequest, SignatureError
from service.intake import Intake, Receipt, Status
from service.log import get_logger
from service.metrics import SIGNATURE_FAILURES, WEBHOOKS
from service.rq_jobs import job_id_for
from service.signature import HEADER, well_formed

log = get_logger("cubehook.webhooks")


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The raw body, refusing (413) as soon as it is known to exceed ``limit`` bytes, and (408)
    when it has not all arrived within ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Content-Length {declared} over the {limit}-byte limit")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise PayloadTooLarge(f"body over the {limit}-byte limit")
    except TimeoutError:
        raise BodyTimeout(f"body not received within {timeout:g} s ({len(body)} bytes came)") from None
    return bytes(body)


async def receive_complycube(request: Request) -> JSONResponse:
    intake: Intake = request.app.state.intake
    signature = request.headers.get(HEADER)
    try:
        well_formed(signature)  # no signature that could verify: 401 before reading any body
        body = await read_body(request, intake.max_body_bytes, intake.body_timeout_seconds)
        outcome = await intake.receive(body, signature)
    except RejectedRequest as exc:
        return _answer(_rejected(exc), "rejected")
    except QueueUnavailable as exc:
        unavailable = JSONResponse(
            {"error": exc.code, "detail": "the event could not be kept; retry later"},
            status_code=exc.status_code,
            headers={"Retry-After": "60"},
        )
        return _answer(unavailable, "queue_unavailable")
    return _answer(_answered(outcome), outcome.status)


def _answered(outcome: Receipt) -> JSONResponse:
    if outcome.status is Status.QUARANTINED:
        # Never any of the body: the id is what an operator needs (cubehook quarantine show ID).
        return JSONResponse(
            {"status": "quarantined", "quarantine_id": outcome.quarantine_id}, status_code=202
        )
    assert outcome.event is not None
    if outcome.status is Status.ACCEPTED:
        accepted = {
            "status": "accepted",
            "event_id": outcome.event.id,
            "job_id": job_id_for(outcome.event.id),
        }
        return JSONResponse(accepted, status_code=202)
    return JSONResponse({"status": outcome.status.value, "event_id": outcome.event.id}, status_code=200)


def _answer(response: JSONResponse, status: str) -> JSONResponse:
    counter = _COUNTERS.get((status, response.status_code))
    if counter is None:  # the label lookup takes a lock and builds a key: once per pair is enough
        counter = _COUNTERS[status, response.status_code] = WEBHOOKS.labels(
            status=status, code=str(response.status_code)
        )
    counter.inc()
    return response


_COUNTERS: dict[tuple[str, int], Counter] = {}


def _rejected(exc: RejectedRequest) -> JSONResponse:
    if isinstance(exc, SignatureError):
        # The reason is logged; the answer does not help a forger tell the cases apart.
        SIGNATURE_FAILURES.labels(reason=exc.reason).inc()
        log.warning("webhook.rejected", status=exc.status_code, reason=exc.reason)
        return JSONResponse({"error": exc.code}, status_code=exc.status_code)
    # The log says how much came and what the limit is; the answer does not tell a prober either.
    log.warning("webhook.rejected", status=exc.status_code, reason=str(exc))
    return JSONResponse({"error": exc.code, "detail": exc.public}, status_code=exc.status_code)
