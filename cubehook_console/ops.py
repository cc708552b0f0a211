"""The operations page: queue depths, workers alive, the last event received; dead letters and
quarantined deliveries with a replay button; the webhook subscription as the watchdog last saw it,
with a re-enable button. Replays and re-enabling are an operator's, and each is on the trail."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cubehook_console.auth import Refused, Who
from cubehook_console.state import Console, console_of
from cubehook_console.users import Role
from service import keys, quarantine
from service.errors import CubehookError, ForeignJob, QueueUnavailable
from workers.operations import dead_letters, replay_job
from workers.operations import status as read_status


def routes() -> list[Route]:
    return [
        Route("/operations", operations, methods=["GET"]),
        Route("/operations/dead-letters/{job_id}/replay", replay_dead_letter, methods=["POST"]),
        Route("/operations/quarantine/{item_id}/replay", replay_quarantined, methods=["POST"]),
        Route("/operations/webhooks/{webhook_id}/enable", enable_webhook, methods=["POST"]),
    ]


def _read(console: Console) -> dict[str, Any]:
    webhooks = {
        quarantine.text(k): quarantine.text(v) == "1"
        for k, v in console.redis.hgetall(keys.WATCHDOG_ENABLED).items()
    }
    return {
        "health": read_status(console.settings, console.redis, console.audit),
        "letters": dead_letters(console.queue, console.audit),
        "webhooks": sorted(webhooks.items()),
        "recent": console.trail.latest(20),
    }


async def operations(request: Request) -> Response:
    console = console_of(request)
    who = await run_in_threadpool(console.auth.require, request, Role.VIEWER)
    seen = await run_in_threadpool(_read, console)
    held = await console.intake()[1].items()
    done = {k: v for k, v in request.query_params.items() if k in ("replayed", "kept", "enabled")}
    return console.page(
        request,
        who,
        "operations.html",
        held=held,
        done=done,
        can_replay_quarantine=console.can_replay,
        can_enable=console.settings.complycube_api_key is not None,
        may_operate=who.user is not None and who.user.role.may(Role.OPERATOR),
        **seen,
    )


async def _operator(request: Request) -> tuple[Console, Who]:
    """An operator's form, its CSRF token checked; Refused otherwise."""
    console = console_of(request)
    who = await run_in_threadpool(console.auth.require, request, Role.OPERATOR)
    await console.auth.form(request, who)
    return console, who


async def replay_dead_letter(request: Request) -> Response:
    console, who = await _operator(request)
    job_id = request.path_params["job_id"]
    try:
        replayed = await run_in_threadpool(replay_job, console.audit, console.queue, job_id)
    except ForeignJob as exc:
        await run_in_threadpool(
            console.trail.record, who.actor, "replay_dead_letter", job_id, False, "foreign"
        )
        raise Refused(409, "Not replayed", f"{exc}. It stays in the dead-letter queue.") from None
    await run_in_threadpool(console.trail.record, who.actor, "replay_dead_letter", job_id, replayed)
    if not replayed:
        raise Refused(
            404, "Not a dead letter", f"There is no failed job {job_id} to replay (replayed already?)."
        )
    return RedirectResponse(f"/operations?{urlencode({'replayed': job_id})}", status_code=303)


async def replay_quarantined(request: Request) -> Response:
    console, who = await _operator(request)
    item_id = request.path_params["item_id"]
    intake, _ = console.intake()
    if intake is None:
        raise Refused(
            503,
            "Replay not configured",
            "Replaying a quarantined delivery checks its signature: "
            "give the console CUBEHOOK_WEBHOOK_SECRETS, as the web process has.",
        )
    try:
        result = await intake.replay(item_id)
    except QueueUnavailable:
        raise Refused(503, "Redis unavailable", "The delivery could not be queued: try again.") from None
    ok = result.result not in ("kept", "missing")
    await run_in_threadpool(console.trail.record, who.actor, "replay_quarantine", item_id, ok, result.result)
    if result.result == "missing":
        raise Refused(404, "Not in the quarantine", f"There is no quarantined delivery {item_id}.")
    key = "replayed" if ok else "kept"
    return RedirectResponse(f"/operations?{urlencode({key: item_id})}", status_code=303)


async def enable_webhook(request: Request) -> Response:
    console, who = await _operator(request)
    webhook_id = request.path_params["webhook_id"]
    known = await run_in_threadpool(console.redis.hexists, keys.WATCHDOG_ENABLED, webhook_id)
    if not known:
        raise Refused(404, "Unknown webhook", f"The watchdog has not seen a webhook {webhook_id}.")
    if console.settings.complycube_api_key is None:
        raise Refused(
            503,
            "Re-enabling not configured",
            "Re-enabling the webhook calls ComplyCube's API: give "
            "the console CUBEHOOK_COMPLYCUBE_API_KEY, as the workers have.",
        )
    try:
        await run_in_threadpool(_enable, console, webhook_id)
    except CubehookError as exc:
        await run_in_threadpool(
            console.trail.record, who.actor, "enable_webhook", webhook_id, False, str(exc)
        )
        raise Refused(
            502, "ComplyCube refused", f"ComplyCube did not re-enable the webhook: {exc}."
        ) from None
    await run_in_threadpool(console.trail.record, who.actor, "enable_webhook", webhook_id, True)
    return RedirectResponse(f"/operations?{urlencode({'enabled': webhook_id})}", status_code=303)


def _enable(console: Console, webhook_id: str) -> None:
    """Through the workers' client, under the fleet's rate limit; the watchdog's record follows."""
    from workers.complycube.client import ComplyCubeClient
    from workers.complycube.ratelimit import RateLimiter

    rate = console.settings.complycube_rate()
    client = ComplyCubeClient.from_settings(
        console.settings, RateLimiter(console.redis, rate) if rate else None
    )
    try:
        hook = client.enable_webhook(webhook_id).model
    finally:
        client.close()
    console.redis.hset(keys.WATCHDOG_ENABLED, webhook_id, int(bool(hook.enabled)))
    console.redis.delete(keys.watchdog_alerted(webhook_id))
