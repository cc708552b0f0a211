"""The jobs RQ runs. Thin orchestrators: bind the log context, hand the session to the processor,
return (and log) one summary.

An event about a workflow session processes that session; an event about a check processes the
session the check belongs to. Transient failures (ComplyCube 429/5xx/timeouts, a busy session)
raise, and RQ retries the job with back-off; permanent ones (404, a rejected API key) are marked
not to be retried and land in RQ's failed registry with the reason.
"""

from __future__ import annotations

from typing import Any

import structlog
from rq import get_current_job

from service.errors import PermanentError
from service.log import get_logger
from workers import runtime

log = get_logger("cubehook.jobs")


def process_event(
    event_id: str, event_type: str, resource_type: str, resource_id: str, event_time: str
) -> dict[str, Any]:
    job = get_current_job()
    with structlog.contextvars.bound_contextvars(
        event_id=event_id, event_type=event_type, job_id=job.id if job else None
    ):
        try:
            processor = runtime.current().processor
            if resource_type.lower().replace("_", "") == "check":
                session_id = processor.session_for_check(resource_id)
                if session_id is None:
                    log.warning("event.unmatched", check_id=resource_id)
                    return {"event_id": event_id, "result": "unmatched", "check_id": resource_id}
            else:
                session_id = resource_id
            outcome = processor.process(session_id, trigger=event_id)
        except PermanentError as exc:
            _give_up(exc)
            raise
        log.info("event.processed", session_id=session_id, result=outcome.result, event_time=event_time)
        return {"event_id": event_id, "event_type": event_type, **outcome.as_dict()}


def process_session(session_id: str, trigger: str) -> dict[str, Any]:
    """Look at a session again (a scheduled re-check of pending checks, an operator's resync)."""
    job = get_current_job()
    with structlog.contextvars.bound_contextvars(
        session_id=session_id, trigger=trigger, job_id=job.id if job else None
    ):
        try:
            outcome = runtime.current().processor.process(session_id, trigger=trigger)
        except PermanentError as exc:
            _give_up(exc)
            raise
        log.info("session.processed", result=outcome.result)
        return {"trigger": trigger, **outcome.as_dict()}


def _give_up(exc: PermanentError) -> None:
    """Retrying cannot help: spend no retries, leave the job in the failed registry for an operator."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
    log.error("job.gave_up", error=str(exc), error_type=type(exc).__name__)
