"""Recovering from outages, and what an operator sees: backfill, the webhook watchdog, the periodic
maintenance job that runs both, the dead-letter queue and the status summary.

ComplyCube disables a webhook after its 10th failed retry and then sends nothing until someone
re-enables it (https://docs.complycube.com/api-reference/other-resources/webhooks). Hours of
downtime can silently stop onboarding, so: the watchdog reads the subscriptions, alerts once when
ours is disabled, optionally re-enables it, and backfills from the last event seen; backfill
(workers.backfill) lists the sessions updated since a time and processes every one whose state has
no decision yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.job import Job

from service import keys, quarantine
from service.errors import ForeignJob
from service.events import format_time
from service.ids import is_complycube_id
from service.log import get_logger
from service.redis import topology as redis_topology
from service.rq_jobs import RUNS, JobFunction, foreign, rq_queue
from service.settings import Settings
from workers.actions.notice import notify
from workers.audit.store import AuditStore
from workers.backfill import BackfillReport as BackfillReport  # re-exported: maintenance and the
from workers.backfill import backfill as backfill  # CLI find backfill here, where it used to live
from workers.dispatch import action_job_id, replay
from workers.runtime import Runtime

log = get_logger("cubehook.operations")


@dataclass
class WatchdogReport:
    disabled: list[str] = field(default_factory=list)
    alerted: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)
    backfill: BackfillReport | None = None


def watchdog(rt: Runtime, public_url: str | None, auto_enable: bool, lookback: timedelta) -> WatchdogReport:
    report = WatchdogReport()
    hooks = [h for h in rt.client.list_webhooks().model.items if public_url is None or h.url == public_url]
    if hooks:
        rt.redis.hset(keys.WATCHDOG_ENABLED, mapping={h.id: int(h.enabled or auto_enable) for h in hooks})
    for hook in hooks:
        key = keys.watchdog_alerted(hook.id)
        if hook.enabled:
            rt.redis.delete(key)  # alert again next time it goes down
            continue
        report.disabled.append(hook.id)
        if rt.redis.set(key, "1", nx=True):
            body = (
                f"ComplyCube disabled webhook {hook.id} ({hook.url}) after failed deliveries: no events "
                f"arrive until it is re-enabled. Auto re-enable is {'on' if auto_enable else 'off'}."
            )
            told = notify(rt.rules, rt.actions.http, "cubehook: ComplyCube disabled the webhook", body)
            if any(t.accepted for t in told):
                report.alerted.append(hook.id)
            else:  # nobody heard it: not "alerted", and told again at the next check
                rt.redis.delete(key)
                log.warning(
                    "watchdog.unheard", webhook_id=hook.id, hint="set [watchdog] actions in the rules file",
                    tried=[str(t) for t in told] or "no [watchdog] actions in the rules file",
                )  # fmt: skip
        if auto_enable and not is_complycube_id(hook.id):
            log.warning(
                "watchdog.unreadable_id", reason="a webhook's id is not a ComplyCube id: not re-enabled"
            )
        elif auto_enable:
            rt.client.enable_webhook(hook.id)
            rt.redis.delete(key)
            report.enabled.append(hook.id)
    if report.disabled:
        last = float(rt.redis.get(keys.LAST_EVENT) or 0)
        since = (
            datetime.fromtimestamp(last, UTC) - timedelta(minutes=5) if last else datetime.now(UTC) - lookback
        )
        report.backfill = backfill(rt, since)
    log.info("watchdog.done", disabled=report.disabled, alerted=report.alerted, enabled=report.enabled)
    return report


# --- the dead-letter queue ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    job_id: str
    kind: str  # event | session | action | record | maintenance | foreign (not cubehook's: never runs)
    summary: str
    error: str
    attempts: int
    failed_at: str


FOREIGN_FATE = "it will not run, and replay refuses it"
KINDS = {
    JobFunction.PROCESS_EVENT: "event",
    JobFunction.PROCESS_SESSION: "session",
    JobFunction.RUN_ACTION: "action",
    JobFunction.RECORD_EVENT: "record",
    JobFunction.MAINTENANCE: "maintenance",
}


def dead_letters(queue: Queue, audit: AuditStore | None = None) -> list[DeadLetter]:
    """RQ's failed jobs; with ``audit``, also the actions the ledger says are dead whose job Redis
    no longer has (it lost its data): they need a person as much, and replay as well."""
    letters = []
    for job_id in queue.failed_job_registry.get_job_ids():
        job = queue.fetch_job(job_id)
        if job is not None:
            letters.append(dead_letter(job))
    if audit is not None:
        listed = {letter.job_id for letter in letters}
        for row in audit.dead_letters():
            job_id = action_job_id(row["decision_id"], row["action"])
            if job_id not in listed and not Job.exists(job_id, connection=queue.connection):
                letters.append(_ledger_letter(job_id, row))
    return letters


def _ledger_letter(job_id: str, row: dict[str, Any]) -> DeadLetter:
    summary = f"decision_id={row['decision_id']}, session_id={row['session_id']}, action={row['action']}"
    error = (row["last_error"] or "unknown").splitlines()[0] + " (its job was lost with Redis's data)"
    return DeadLetter(job_id, "action", summary, error, int(row["attempts"]), format_time(row["updated_at"]))


def failure_reason(traceback: str) -> str:
    """The line of a traceback that says what failed: its last, less the pointers some libraries
    append to it (SQLAlchemy's "(Background on this error at: ...)")."""
    lines = [line.strip() for line in traceback.strip().splitlines()]
    said = [line for line in lines if line and not line.startswith("(Background on this error at:")]
    return said[-1] if said else "unknown"


def dead_letter(job: Job) -> DeadLetter:
    result = job.latest_result()
    error = failure_reason(result.exc_string) if result and result.exc_string else "unknown"
    # A job that gave up (a permanent error) says how many times it ran; else every retry was
    # spent, and it ran once more than its retries.
    attempts = int(job.meta.get(RUNS) or 1 + len(job.retry_intervals or []) - (job.retries_left or 0))
    failed = format_time(job.ended_at) if job.ended_at else "-"
    why = foreign(job)
    if why is not None:  # written to Redis by someone else: shown, never read further, never run
        return DeadLetter(job.id, "foreign", f"{why}; {FOREIGN_FATE}", error, attempts, failed)
    kwargs: dict[str, Any] = job.kwargs
    summary = ", ".join(
        f"{k}={v}" for k, v in kwargs.items() if k in ("event_id", "session_id", "decision_id", "action")
    )
    kind = KINDS[JobFunction(str(job.func_name))]  # one of cubehook's: foreign() said so
    return DeadLetter(job.id, kind, summary, error, attempts, failed)


def replay_job(audit: AuditStore, queue: Queue, job_id: str) -> bool:
    """Re-queue a failed job. Once-per-state decisions and the action ledger keep it exactly once.
    The audit trail alone: the console, which has no worker runtime, replays through it too.
    Raises ForeignJob, saying why, for a job cubehook did not queue (it stays where it is)."""
    job = queue.fetch_job(job_id)
    if job is None:  # a dead action whose job Redis lost: the ledger knows it
        dead = [r for r in audit.dead_letters() if action_job_id(r["decision_id"], r["action"]) == job_id]
        return any(replay(queue, audit, r["decision_id"], r["action"], r["session_id"]) for r in dead)
    if job_id not in queue.failed_job_registry:
        return False
    why = foreign(job)
    if why is not None:
        raise ForeignJob(f"job {job_id} {why}: not replayed, for it would never run")
    if job.func_name == JobFunction.RUN_ACTION:
        return replay(queue, audit, job.kwargs["decision_id"], job.kwargs["action"])
    queue.failed_job_registry.requeue(job_id)
    return True


def not_replayed(audit: AuditStore, queue: Queue, job_id: str) -> str:
    """Why replay_job left ``job_id`` as it was, for the operator who asked: not found, not dead
    (and what it is), or sent already (the ledger never sends an action twice)."""
    job = queue.fetch_job(job_id)
    state = _ledger_state(audit, job_id)
    if state == "sent":
        return "sent already: the ledger has the action sent, and never sends it twice"
    if job is None:
        if state is None:
            return "not found: no job of that id in Redis, nor an action of that id on the ledger"
        return f"not dead: the ledger has the action {state}"
    if job_id not in queue.failed_job_registry:
        status = job.get_status(refresh=False)
        return f"not dead: the job is {getattr(status, 'value', status)}"
    return f"not re-queued: the ledger has the action {state or 'unknown'}"


def _ledger_state(audit: AuditStore, job_id: str) -> str | None:
    """The ledger's state of the action whose job id is ``job_id`` (act-DECISION-ACTION); None for
    another kind of job, or an action the ledger does not have."""
    decision_id = job_id.removeprefix("act-").rpartition("-")[0]
    if not job_id.startswith("act-") or not decision_id:
        return None
    for row in audit.ledger(decision_id):
        if action_job_id(decision_id, row["action"]) == job_id:
            return str(row["state"])
    return None


def status(settings: Settings, redis: Redis, audit: AuditStore | None) -> dict[str, Any]:
    """What `cubehook status` shows. It only reads Redis and, when there is one, the audit trail:
    no ComplyCube key, no rules."""
    queue = rq_queue(settings.queue_name, redis)
    oldest = queue.get_jobs(0, 1)
    last = redis.get(keys.LAST_EVENT)
    return {
        "queued": queue.count,
        "started": queue.started_job_registry.count,
        "scheduled": queue.scheduled_job_registry.count,
        "failed": queue.failed_job_registry.count,
        "dead_actions": len(audit.dead_letters()) if audit else "unknown (no audit trail yet)",
        **_fleet(redis, queue),
        "oldest_queued_seconds": round(time.time() - oldest[0].enqueued_at.timestamp(), 1)
        if oldest and oldest[0].enqueued_at
        else 0,
        "last_event_at": format_time(datetime.fromtimestamp(float(last), UTC)) if last else None,
        **_intake_status(settings, redis),
        **redis_topology(redis),  # the primary (as the sentinels name it), its role, its replicas
    }


def _fleet(redis: Redis, queue: Queue) -> dict[str, Any]:
    """The workers as RQ has them registered, and as their watches say they are alive (every few
    seconds, workers.watch). A Redis that came back empty forgot RQ's registrations: the watches
    re-register within a tick, and until then the two numbers tell a working fleet from a dead one."""
    registered = len(Worker.all(queue=queue))
    alive = int(redis.zcount(keys.WORKERS_ALIVE, int(time.time() * 1000), "+inf"))
    fleet: dict[str, Any] = {"workers": registered, "workers_alive": alive}
    if alive > registered:
        fleet["workers_note"] = (
            f"{alive - registered} live worker(s) not registered with RQ: Redis lost their registrations "
            "(they re-register within seconds)"
        )
    elif alive == 0 and registered:
        fleet["workers_note"] = "RQ lists workers, but none has reported alive: they may have died"
    return fleet


def _intake_status(settings: Settings, redis: Redis) -> dict[str, Any]:
    """What the intake kept aside: the quarantine (see `cubehook quarantine list`) and the types of
    the events it did not act on, with their counts."""
    held = quarantine.totals(redis, settings.quarantine_retention_seconds)
    ignored = quarantine.ignored_types(redis)
    copies = {quarantine.text(k): int(v) for k, v in redis.hgetall(keys.COPIES_BY_TYPE).items()}
    return {
        "quarantined": held.items,
        "quarantine_bytes": held.bytes,
        "quarantine_evicted": held.evicted,
        "ignored_types": _counts(ignored),
        "copies_last_window": _counts(copies),  # deliveries of events seen before, by type
    }


def _counts(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {count}" for name, count in ordered) or "none"
