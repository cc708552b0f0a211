"""The jobs RQ runs. Thin orchestrators: bind the log context, hand over to the runtime's parts,
return (and log) one summary.

An event about a workflow session processes that session; an event about a check processes the
session the check belongs to. Transient failures (ComplyCube 5xx/timeouts, a busy session, an
action target down) raise, and RQ retries the job with back-off; permanent ones (404, a rejected
API key, an action target refusing) spend no retries and land in RQ's failed registry. ComplyCube's
rate limit (a 429 beyond the client's retries) fails nothing: the job is put back for later
(workers.reschedule). An id that is not a ComplyCube id (service.ids: an event's, queued before the
intake checked them, or one in an API answer) is recorded as unreadable and never requested.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from rq import get_current_job

from service import keys
from service.errors import InvalidId, PermanentError, UpstreamNotFound, UpstreamRateLimited
from service.events import Resource, parse_time
from service.ids import SHAPE, is_complycube_id
from service.log import get_logger
from service.metrics import EVENT_TO_DECISION, JOB_SECONDS
from service.queue import accepted_at
from service.rq_jobs import RUNS
from workers import runtime, triggers
from workers.pipeline import Result
from workers.reschedule import when_rate_limited

log = get_logger("cubehook.jobs")


@contextmanager
def _job(name: str, **context: object) -> Iterator[None]:
    """Bind the job's context to every log line, time it; permanent failures skip RQ's retries."""
    job = get_current_job()
    started = time.perf_counter()
    result = "ok"
    with structlog.contextvars.bound_contextvars(job_id=job.id if job else None, **context):
        try:
            yield
        except UpstreamRateLimited:
            result = "rescheduled"  # by workers.reschedule, around the job function
            raise
        except PermanentError as exc:
            result = "gave_up"
            if job is not None:
                # Retrying cannot help: leave it to an operator, saying how many runs it had.
                job.meta[RUNS] = 1 + len(job.retry_intervals or []) - (job.retries_left or 0)
                job.save_meta()  # type: ignore[no-untyped-call]
                job.retries_left = 0
            # The traceback goes to RQ's failed registry; the log line says what and why.
            log.error("job.gave_up", error=str(exc), error_type=type(exc).__name__)  # noqa: TRY400
            raise
        except Exception:
            result = "failed"
            raise
        finally:
            JOB_SECONDS.labels(function=name, result=result).observe(time.perf_counter() - started)


def _is_check(resource_type: str) -> bool:
    # The web side names the resource (service.events.Resource). Jobs queued before it did carried
    # resourceType as sent: "check" for checks (confirmed), anything else for sessions.
    return resource_type == Resource.CHECK


@when_rate_limited
def process_event(
    event_id: str, event_type: str, resource_type: str, resource_id: str, event_time: str
) -> dict[str, Any]:
    with _job("process_event", event_id=event_id, event_type=event_type):
        current = runtime.current()
        processor = current.processor
        is_check = _is_check(resource_type)
        record = functools.partial(
            current.audit.record_event, event_id=event_id, event_type=event_type, resource_type=resource_type,
            resource_id=resource_id, event_time=event_time, once=True,
        )  # fmt: skip
        if not is_complycube_id(resource_id):  # queued before the intake quarantined such events
            # On record as it came, its control characters shown (a NUL is no SQL string).
            shown = resource_id.encode("unicode_escape").decode("ascii")[:256]
            on_record = functools.partial(record, resource_id=shown)
            return _unreadable(on_record, event_id, event_type, InvalidId("payload.id", SHAPE))
        known = current.store.session_for_check(resource_id) if is_check else resource_id
        delay = current.settings.event_defer_seconds
        put_back = triggers.later(get_current_job(), delay, event_type, is_check, known, current.store)
        if put_back is not None:  # its session's own event will most likely have covered it by then
            summary = put_back.summary(Result.DEFERRED)
            log.info("event.deferred", session_id=known, next_attempt_at=summary["next_attempt_at"])
            found = {"session_id": known} if known else {}
            return {"event_id": event_id, "event_type": event_type, **found, **summary}
        try:
            session_id = known if known is not None else processor.session_for_check(resource_id)
            record(disposition="accepted", session_id=session_id)
            if session_id is None:
                log.warning("event.unmatched", check_id=resource_id)
                return {"event_id": event_id, "result": Result.UNMATCHED, "check_id": resource_id}
            asked_at = accepted_at(current.redis, event_id)
            look = processor.process(session_id, trigger=event_id, asked_at=asked_at)
        except UpstreamNotFound:
            # Expected, and no job to retry: an event about a session of another account (or key),
            # or a hand-made test event. On record, and one warning line; nothing is decided.
            named = {"check_id": resource_id} if is_check else {"session_id": resource_id}
            record(disposition="unknown", session_id=named.get("session_id"))
            log.warning(
                "event.unknown", resource_type=resource_type, resource_id=resource_id,
                hint="ComplyCube's API does not know it (404): an event of another account or key, or a "
                "test event; recorded, nothing decided",
            )  # fmt: skip
            return {"event_id": event_id, "event_type": event_type, "result": Result.UNKNOWN, **named}
        except InvalidId as exc:  # an id in one of ComplyCube's answers (the check's client's)
            return _unreadable(record, event_id, event_type, exc)
        happened = parse_time(event_time)
        if look.result is Result.DECIDED and happened is not None:
            EVENT_TO_DECISION.observe(max(0.0, time.time() - happened.timestamp()))
        log.info("event.processed", session_id=session_id, result=look.result, event_time=event_time)
        return {"event_id": event_id, "event_type": event_type, **look.as_dict()}


def _unreadable(
    record: Callable[..., object], event_id: str, event_type: str, exc: InvalidId
) -> dict[str, Any]:
    """Nothing requested, nothing to retry: on record as unreadable, and one warning line that
    says why (never the id: it is not ComplyCube's, and may be anything)."""
    record(disposition="unreadable", session_id=None)
    log.warning("event.unreadable", reason=str(exc))
    return {"event_id": event_id, "event_type": event_type, "result": Result.UNREADABLE, "reason": str(exc)}


@when_rate_limited
def process_session(session_id: str, trigger: str) -> dict[str, Any]:
    """Look at a session again (a scheduled re-check of pending checks, an operator's resync)."""
    with _job("process_session", session_id=session_id, trigger=trigger):
        if not is_complycube_id(session_id):  # a backfill's or a resync's: never requested
            reason = str(InvalidId("session id", SHAPE))
            log.warning("session.unreadable", reason=reason)
            return {"trigger": trigger, "result": Result.UNREADABLE, "reason": reason}
        look = runtime.current().processor.process(session_id, trigger=trigger)
        log.info("session.processed", result=look.result)
        return {"trigger": trigger, **look.as_dict()}


@when_rate_limited
def run_action(decision_id: str, session_id: str, action: str) -> dict[str, str]:
    """One action of one decision (see workers.dispatch): once in effect, retried, dead-lettered."""
    with _job("run_action", decision_id=decision_id, session_id=session_id, action=action):
        detail = runtime.current().actions.run(decision_id, session_id, action)
        return {"decision_id": decision_id, "action": action, "detail": detail}


@when_rate_limited
def record_event(
    event_id: str, event_type: str, resource_type: str, resource_id: str, event_time: str, disposition: str
) -> dict[str, str]:
    """Put an event the web side did not queue for processing (a duplicate, an ignored type) on the
    audit trail, so that every delivery received is on record."""
    with _job("record_event", event_id=event_id, event_type=event_type):
        session_id = None if _is_check(resource_type) or disposition == "ignored" else resource_id
        runtime.current().audit.record_event(
            event_id=event_id, event_type=event_type, resource_type=resource_type, resource_id=resource_id,
            disposition=disposition, event_time=event_time, session_id=session_id,
        )  # fmt: skip
        return {"event_id": event_id, "disposition": disposition}


@when_rate_limited
def maintenance(recover: bool = False) -> dict[str, Any]:
    """The periodic job: the webhook watchdog, a backfill since the previous run, the ledger's
    reconciliation (workers.requeue), then the audit trail's retention (when
    CUBEHOOK_AUDIT_RETENTION_DAYS is set). The workers' watch queues it every interval
    (workers.worker), whichever workers are alive; and at once, with ``recover``, when Redis came
    back without its data (workers.epoch): then the backfill and the reconciliation reach over the
    whole look-back window, since what Redis held of it is gone."""
    from datetime import UTC, datetime, timedelta

    from workers import operations, requeue
    from workers.audit import retention

    with _job("maintenance", recover=recover):
        rt = runtime.current()
        settings = rt.settings
        lookback = timedelta(seconds=settings.backfill_lookback_seconds)
        now = datetime.now(UTC)
        previous = None if recover else rt.redis.get(keys.MAINTENANCE_LAST_RUN)
        last = datetime.fromtimestamp(float(previous), UTC) if previous else None
        since = last - timedelta(minutes=5) if last else now - lookback
        try:
            report = operations.watchdog(
                rt, settings.public_webhook_url, settings.webhook_auto_enable, lookback
            )
        finally:  # the webhook's listing failing must not stop the backfill and the reconciliation
            queued = operations.backfill(rt, since).queued
            requeued = requeue.reconcile(rt.audit, rt.processor.dispatcher, since).requeued
            rt.redis.set(keys.MAINTENANCE_LAST_RUN, now.timestamp())
        purged = 0
        if settings.audit_retention_days:  # the audit trail's retention (workers.audit.retention)
            before = now - timedelta(days=settings.audit_retention_days)
            gone = retention.purge(rt.audit, before, settings.legal_hold_days, "maintenance")
            purged = gone.events + gone.snapshots + gone.decisions
        log.info(
            "maintenance.done", disabled_webhooks=report.disabled, backfilled=len(queued),
            requeued_actions=len(requeued), purged_rows=purged, recover=recover,
        )  # fmt: skip
        return {
            "disabled_webhooks": ",".join(report.disabled),
            "backfilled": str(len(queued)),
            "requeued_actions": str(len(requeued)),
            "purged": str(purged),
        }
