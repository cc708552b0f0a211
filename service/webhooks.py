"""POST /webhooks/complycube: a fixed sequence of guards, each with its own answer.

1. body over the limit          413  (Content-Length checked first, then counted while streaming)
   body not all sent in time    408  (a stalled or trickling client)
2. signature missing or wrong   401  (on the raw bytes, constant time, any configured secret)
3. not a JSON Event object      400  (see service.events.read_event for what it must hold)
4. not about a session or check 200  ignored, not queued (an error would make ComplyCube retry)
5. event id already accepted    200  duplicate, not queued again
6. queued                       202
7. Redis could not take it      503  not marked seen, so ComplyCube's retry succeeds later
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import JSONResponse

from service.errors import (
    BodyTimeout,
    MalformedEvent,
    PayloadTooLarge,
    QueueUnavailable,
    RejectedRequest,
    SignatureError,
)
from service.events import Resource, Unreadable, read_event, summary
from service.log import get_logger
from service.metrics import ENQUEUE_SECONDS, SIGNATURE_FAILURES, WEBHOOKS
from service.queue import EventQueue, EventRef, Submitted, job_id_for
from service.signature import HEADER, verify

log = get_logger("cubehook.webhooks")


@dataclass(frozen=True, slots=True)
class Intake:
    """What the endpoint needs, built once by create_app."""

    secrets: tuple[bytes, ...]
    max_body_bytes: int
    body_timeout_seconds: float
    queue: EventQueue


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
    try:
        body = await read_body(request, intake.max_body_bytes, intake.body_timeout_seconds)
        verify(body, request.headers.get(HEADER), intake.secrets)
        event = read_event(body)
        if isinstance(event, Unreadable):
            raise MalformedEvent(event.detail)
    except RejectedRequest as exc:
        return _answer(_rejected(exc), "rejected")

    bound = log.bind(**summary(event))
    ref = EventRef(event.id, event.type, event.resource.value, event.resource_id, event.created_at)
    if event.resource is Resource.OTHER:
        bound.info("webhook.ignored")
        try:
            await intake.queue.record_async(ref, "ignored")
        except QueueUnavailable as exc:
            # Still a 200: an error would make ComplyCube retry, and in the end disable the webhook,
            # for an event cubehook does not act on. The log line is its record.
            bound.warning("webhook.unrecorded", error=str(exc))
        return _answer(JSONResponse({"status": "ignored", "event_id": event.id}, status_code=200), "ignored")

    started = time.perf_counter()
    try:
        submitted = await intake.queue.submit_async(ref)  # one round trip, on the asyncio client
    except QueueUnavailable as exc:
        bound.error("webhook.queue_unavailable", error=str(exc))
        unavailable = JSONResponse(
            {"error": exc.code, "detail": "the event could not be queued; retry later"},
            status_code=exc.status_code,
            headers={"Retry-After": "60"},
        )
        return _answer(unavailable, "queue_unavailable")
    ENQUEUE_SECONDS.observe(time.perf_counter() - started)
    if submitted is Submitted.DUPLICATE:
        bound.info("webhook.duplicate")
        return _answer(
            JSONResponse({"status": "duplicate", "event_id": event.id}, status_code=200), "duplicate"
        )
    bound.info("webhook.accepted")
    accepted = {"status": "accepted", "event_id": event.id, "job_id": job_id_for(event.id)}
    return _answer(JSONResponse(accepted, status_code=202), "accepted")


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
    log.warning("webhook.rejected", status=exc.status_code, reason=str(exc))
    return JSONResponse({"error": exc.code, "detail": str(exc)}, status_code=exc.status_code)
