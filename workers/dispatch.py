"""Decisions into actions, each exactly once in effect.

When a decision is committed, one RQ job per planned action is queued, at the front of the queue,
in the same Redis transaction (so a decision never exists without its actions, nor actions without
it). Each job:

1. claims the action in the ledger (written before the attempt: ``sending``); an action already
   ``sent`` is not sent again, whatever re-ran the job;
2. sends it, with an idempotency key that is the same on every attempt, so a target that received
   a copy the ledger could not record (the worker died in between) can drop it;
3. records the attempt and its result (``sent``, or ``failed``: RQ retries it with back-off and
   jitter; or ``dead`` once retries are spent or the target refused it: the dead-letter queue,
   which ``replay`` empties).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2
from redis.client import Pipeline
from rq import Queue, Retry, get_current_job
from rq.job import Job

from service.errors import ActionRejected
from service.events import format_time
from service.log import get_logger
from service.metrics import ACTIONS
from service.rq_jobs import JobFunction, job_id_part
from service.settings import Settings
from workers.actions import senders
from workers.actions.base import ActionContext, PersonalData
from workers.audit.schema import Claim, now
from workers.audit.store import AuditStore
from workers.judging.judge import Decision
from workers.judging.rules import Planned, Rules, plan
from workers.outages import DATABASE_ERRORS, HEALTH, Dependency
from workers.seal import Refused, refuse

log = get_logger("cubehook.dispatch")
SENT_RECORD_PATIENCE = 120.0  # seconds: well within the job's timeout (300 s by default)


def action_job_id(decision_id: str, action: str) -> str:
    return f"act-{decision_id}-{job_id_part(action, 16)}"


def idempotency_key(decision_id: str, action: str) -> str:
    return f"{decision_id}.{action}"


def jittered(intervals: Sequence[int], rng: random.Random) -> list[int]:
    """Each retry delay +-20%, so a target that comes back is not hit by every retry at once."""
    return [max(0, round(i * rng.uniform(0.8, 1.2))) for i in intervals]


@dataclass
class Dispatcher:
    """Plans a decision's actions and queues their jobs inside the decision's transaction."""

    rules: Rules
    queue: Queue
    retry_intervals: tuple[int, ...]
    rng: random.Random
    result_ttl: int = 600  # the ledger holds what became of an action; RQ's result is not read

    @classmethod
    def from_settings(cls, settings: Settings, rules: Rules, queue: Queue) -> Dispatcher:
        rng = random.Random()  # noqa: S311 - retry jitter, not secrets
        return cls(rules, queue, settings.action_retry_intervals, rng, settings.result_ttl_seconds)

    def planned(self, decision: Decision) -> tuple[Planned, ...]:
        return plan(decision, self.rules.file)

    def job(self, decision_id: str, session_id: str, action: str) -> Job:
        """The job of one action of a decision (never queued by this call)."""
        intervals = jittered(self.retry_intervals, self.rng)
        return self.queue.create_job(
            JobFunction.RUN_ACTION,
            kwargs={"decision_id": decision_id, "session_id": session_id, "action": action},
            job_id=action_job_id(decision_id, action),
            description=f"action {action} for {decision_id}",
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
            result_ttl=self.result_ttl,
            failure_ttl=365 * 24 * 3600,  # the dead-letter queue keeps a year
        )

    def enqueue(self, pipe: Pipeline, decision: Decision) -> list[str]:
        job_ids = []
        for planned in self.planned(decision):
            job = self.job(decision.decision_id, decision.session_id, planned.action)
            # At the front: the decision is made, and its actions should not wait behind the
            # events queued meanwhile (there are never more actions than decisions, so events
            # cannot starve).
            self.queue.enqueue_job(job, pipeline=pipe, at_front=True)
            job_ids.append(job.id)
        return job_ids


class ActionRunner:
    def __init__(
        self,
        rules: Rules,
        audit: AuditStore,
        load_decision: Callable[[str, str], Decision | None],
        personal_data: Callable[[str], PersonalData],
        http: httpx2.Client,
        console_url: str | None = None,
    ) -> None:
        self.rules = rules
        self.audit = audit
        self.load_decision = load_decision
        self.personal_data = personal_data
        self.http = http
        self.console_url = console_url
        self.senders = senders()

    def run(self, decision_id: str, session_id: str, action: str) -> str:
        bound = log.bind(decision_id=decision_id, session_id=session_id, action=action)
        decision = self.load_decision(session_id, decision_id)
        if decision is None:  # never made by a worker or the console, or its seal did not verify
            refuse(Refused.UNKNOWN, session_id, decision_id)
            raise ActionRejected(
                f"decision {decision_id} of session {session_id} is unknown: no sealed decision in Redis "
                "and none on the audit trail; not acted on"
            )
        config = self.rules.file.action.get(action)
        if config is None:
            raise ActionRejected(f"action {action!r} is no longer in the rules file")
        if action not in {planned.action for planned in plan(decision, self.rules.file)}:
            # A job is data in Redis: one naming an action the rules do not plan for this decision
            # (written by hand, or the rules changed since) does not send it there.
            raise ActionRejected(f"the rules file does not plan action {action!r} for decision {decision_id}")
        self.audit.record_decision(decision)  # before any effect of it
        claim = self.audit.claim(decision_id, session_id, action)
        if claim is None:
            bound.info("action.skipped", reason="sent already")
            return "sent already"
        started = now()
        context = ActionContext(
            decision,
            action,
            config,
            idempotency_key(decision_id, action),
            self.rules,
            self.http,
            self.personal_data,
            self.console_url,
        )
        try:
            detail = self.senders[config.type](context)
        except ActionRejected as exc:
            ACTIONS.labels(action=action, result="dead").inc()
            self.audit.finish(claim, session_id, ok=False, detail=str(exc), started=started, dead=True)
            bound.error("action.dead", attempt=claim.attempt, error=str(exc))
            raise
        except Exception as exc:
            job = get_current_job()
            last = job is None or not job.retries_left
            ACTIONS.labels(action=action, result="dead" if last else "failed").inc()
            self.audit.finish(claim, session_id, ok=False, detail=str(exc), started=started, dead=last)
            if last:  # it needs a person now: replay it once its target is fixed
                bound.error("action.dead", attempt=claim.attempt, error=str(exc))
            else:
                bound.warning(
                    "action.failed", attempt=claim.attempt, error=str(exc), next_attempt_at=next_attempt(job)
                )
            raise
        self._record_sent(claim, session_id, detail, started)
        ACTIONS.labels(action=action, result="sent").inc()
        bound.info("action.sent", attempt=claim.attempt, detail=detail)
        return detail

    def _record_sent(self, claim: Claim, session_id: str, detail: str, started: datetime) -> None:
        """The target has it: put that on the ledger, waiting out a database outage of up to
        ``SENT_RECORD_PATIENCE`` seconds (the job's lease is renewed meanwhile) rather than letting
        a re-run send it again. Past that the error is raised, and the job is put back; the re-run
        sends with the same idempotency key, so the target can still drop the copy."""
        deadline = time.monotonic() + SENT_RECORD_PATIENCE
        pause = 0.5
        while True:
            try:
                self.audit.finish(claim, session_id, ok=True, detail=detail, started=started)
                return
            except DATABASE_ERRORS as exc:
                if time.monotonic() + pause > deadline:
                    raise
                HEALTH.saw(Dependency.DATABASE, up=False, error=f"{type(exc).__name__}: {exc}")
                time.sleep(pause)
                pause = min(10.0, pause * 2)


def next_attempt(job: Job | None) -> str | None:
    """When RQ will run a failing job again (it has retries left), by its retry intervals."""
    if job is None or not job.retries_left:
        return None
    return format_time(datetime.now(UTC) + timedelta(seconds=job.get_retry_interval()))


def replay(
    queue: Queue, audit: AuditStore, decision_id: str, action: str, session_id: str | None = None
) -> bool:
    """Send a dead-lettered action again: back to pending in the ledger, its job re-queued (made
    anew, given ``session_id``, when Redis lost it with its data). The ledger still guards it: an
    action that was sent is never sent twice."""
    revived = audit.revive(decision_id, action)
    job_id = action_job_id(decision_id, action)
    if not Job.exists(job_id, connection=queue.connection):
        if not revived or session_id is None:
            return False
        kwargs = {"decision_id": decision_id, "session_id": session_id, "action": action}
        queue.enqueue(
            JobFunction.RUN_ACTION, kwargs=kwargs, job_id=job_id, at_front=True, result_ttl=600,
            description=f"action {action} for {decision_id} (replayed)", failure_ttl=365 * 24 * 3600,
        )  # fmt: skip
        return True
    if job_id in queue.failed_job_registry:
        queue.failed_job_registry.requeue(job_id)
        return True
    return revived
