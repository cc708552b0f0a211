"""The ledger is the authority for "sent": what it does not say was sent is sent, whatever Redis
forgot.

An action's job lives in Redis: queued with its decision, retried by RQ's scheduler, dead-lettered
in RQ's failed registry. A Redis that loses its data (a restart without persistence, a failover to
a replica that had not received the write) loses those jobs, and with them every later attempt,
silently: the trail still shows the decision and a ledger row ``failed`` or ``pending``. The
reconciliation below, run by the periodic maintenance and at once after a data loss
(workers.epoch), re-queues from the trail:

1. every ledger row that is not ``sent`` nor ``dead`` (``pending``, ``sending``, ``failed``) whose
   job is not live (queued, started, scheduled or deferred) in Redis;
2. every planned action without a ledger row of a decision made since ``since`` that no later
   decision superseded (its job was lost before its first attempt), when its job is not live.

A re-queued job has the id its first one had, and each put-back watches that id's job key, so a
job that comes back meanwhile is left alone; the ledger's claim keeps it at most once in effect
(an action found ``sent`` is not sent again). A dead-lettered job (failed) is left for a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from redis.exceptions import WatchError
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import select

from service.log import get_logger
from workers.audit import AuditStore
from workers.audit_schema import action_ledger, decisions
from workers.decide import Decision
from workers.dispatch import Dispatcher, action_job_id
from workers.outages import ACTIONS_REQUEUED

log = get_logger("cubehook.ledger")
UNSENT = ("pending", "sending", "failed")
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
BATCH = 500


@dataclass
class LedgerReport:
    checked: int = 0  # actions looked at
    requeued: list[str] = field(default_factory=list)  # their job ids


def reconcile(audit: AuditStore, dispatcher: Dispatcher, since: datetime) -> LedgerReport:
    """Re-queue the actions the trail says are not sent and Redis has no live job for."""
    report = LedgerReport()
    configured = dispatcher.rules.file.action
    for decision_id, session_id, action in _unsent(audit):
        if action in configured:  # an action taken out of the rules file since: left as it is
            report.checked += 1
            _requeue(dispatcher, decision_id, session_id, action, "not_sent", report)
    recent = [d for d in _recent(audit, since) if dispatcher.planned(d)]
    for start in range(0, len(recent), BATCH):
        batch = recent[start : start + BATCH]
        known = _ledger_actions(audit, [d.decision_id for d in batch])
        for decision in batch:
            for planned in dispatcher.planned(decision):
                if (decision.decision_id, planned.action) not in known:
                    report.checked += 1
                    _requeue(dispatcher, decision.decision_id, decision.session_id, planned.action,
                             "never_tried", report)  # fmt: skip
    if report.requeued:
        log.warning("ledger.reconciled", checked=report.checked, requeued=len(report.requeued))
    else:
        log.info("ledger.reconciled", checked=report.checked, requeued=0)
    return report


def _unsent(audit: AuditStore) -> list[tuple[str, str, str]]:
    query = select(action_ledger.c.decision_id, action_ledger.c.session_id, action_ledger.c.action).where(
        action_ledger.c.state.in_(UNSENT)
    )
    with audit.engine.connect() as connection:
        return [(r.decision_id, r.session_id, r.action) for r in connection.execute(query)]


def _recent(audit: AuditStore, since: datetime) -> Iterable[Decision]:
    """Decisions made since ``since`` that no later decision superseded, oldest first."""
    query = (
        select(decisions.c.decision_id, decisions.c.document)
        .where((decisions.c.decided_at >= since) & decisions.c.superseded_by.is_(None))
        .order_by(decisions.c.decided_at)
    )
    with audit.engine.connect() as connection:
        rows = connection.execute(query).fetchall()
    for row in rows:
        yield Decision.from_dict(row.document)


def _ledger_actions(audit: AuditStore, decision_ids: list[str]) -> set[tuple[str, str]]:
    """The (decision, action) pairs the ledger has a row for, of these decisions."""
    query = select(action_ledger.c.decision_id, action_ledger.c.action).where(
        action_ledger.c.decision_id.in_(decision_ids)
    )
    with audit.engine.connect() as connection:
        return {(str(r.decision_id), str(r.action)) for r in connection.execute(query)}


def live(queue: Queue, job_id: str) -> bool | None:
    """True when the job is queued, running, scheduled or deferred; None when it is a dead letter
    (failed: a person's to replay); False when Redis has no live job of that id."""
    status = queue.connection.hget(Job.key_for(job_id), "status")
    text = status.decode() if isinstance(status, bytes) else status
    if text == JobStatus.FAILED:
        return None
    return text in LIVE


def _requeue(
    dispatcher: Dispatcher, decision_id: str, session_id: str, action: str, reason: str, report: LedgerReport
) -> None:
    queue = dispatcher.queue
    job_id = action_job_id(decision_id, action)
    with queue.connection.pipeline() as pipe:
        try:
            pipe.watch(Job.key_for(job_id))  # type: ignore[no-untyped-call]
            if live(queue, job_id) is not False:
                pipe.unwatch()
                return
            job = dispatcher.job(decision_id, session_id, action)
            pipe.multi()
            queue.enqueue_job(job, pipeline=pipe, at_front=True)
            pipe.execute()
        except WatchError:
            return  # its job came back meanwhile: it is live
    report.requeued.append(job_id)
    ACTIONS_REQUEUED.labels(reason=reason).inc()
    log.warning(
        "ledger.requeued", decision_id=decision_id, session_id=session_id, action=action, reason=reason
    )
