"""Process one session: fetch it fresh, reconcile and judge it (pure: workers.judging.reconcile,
workers.judging.judge), then commit and log what follows. Nothing is decided here.

The event that triggered the work is only a trigger: the session and its checks are always
fetched from the API (the session, then its checks in one list call: two calls whatever its number
of checks), so duplicates, replays and out-of-order events converge on one decision.
While the session is still running (started, processing) its checks are not fetched: they cannot
decide anything yet, and ComplyCube's rate limit is better spent on sessions that can.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from structlog.typing import FilteringBoundLogger as BoundLogger

from service.errors import InvalidId
from service.events import format_time
from service.ids import SHAPE, is_complycube_id
from service.log import get_logger
from service.metrics import DECISIONS
from service.rq_jobs import JobFunction, job_id_part
from service.settings import DAY
from workers.audit.store import AuditStore
from workers.complycube.client import ComplyCubeClient
from workers.dispatch import Dispatcher
from workers.judging.judge import Decide, Decision, Progress, RecheckSchedule, Wait, judge, make_decision
from workers.judging.reconcile import Reconciliation, Status, needs_checks, reconcile
from workers.sessions import Committed, HandedOff, Lease, SessionStore

log = get_logger("cubehook.pipeline")
MakeDecision = Callable[[Decision | None], Decision]  # the decision, given the one it supersedes
MAX_CLIENT_SESSIONS_SEARCHED = 5
FOLLOW_UP = "follow-up"  # the trigger of a look scheduled by a job that handed off to a holder


class Result(StrEnum):
    """What became of a job's look at a session (its result in RQ, and its summary log line)."""

    PROGRESS = "progress"  # still running: seen so
    WAITING = "waiting"  # complete, checks pending: a re-check is scheduled
    DECIDED = "decided"  # a decision for a new state
    UNCHANGED = "unchanged"  # this state was decided already
    STALE = "stale"  # a later holder has written meanwhile: nothing written
    COALESCED = "coalesced"  # the session was busy: its holder looks again for this job
    COVERED = "covered"  # a look that began after this job's event has answered it
    UNMATCHED = "unmatched"  # a check event whose session cannot be found
    UNKNOWN = "unknown"  # ComplyCube's API does not know the session or check (404): nothing to decide
    UNREADABLE = "unreadable"  # an id that is not a ComplyCube id (service.ids): never requested
    DEFERRED = "deferred"  # put back for later: its session's own event will cover it (triggers)
    RESCHEDULED = "rescheduled"  # put back after ComplyCube's rate limit (reschedule)
    WAITING_FOR = "waiting_for_infrastructure"  # put back until Redis, the database or ComplyCube is back


@dataclass(frozen=True)
class Look:
    """What one job's look at a session came to."""

    session_id: str
    result: Result
    decision_id: str | None = None
    outcome: str | None = None
    status: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class SessionProcessor:
    """Looks at sessions for the jobs: one holder at a time per session (SessionStore's lock, with
    its hand-off), a fetch from ComplyCube, the pure core's judgement, and what that commits: the
    decision, in Redis and on the audit trail, its action jobs, or the next re-check."""

    def __init__(
        self,
        client: ComplyCubeClient,
        store: SessionStore,
        queue: Queue,
        recheck_intervals: tuple[int, ...],
        executor: ThreadPoolExecutor,
        audit: AuditStore,
        dispatcher: Dispatcher,
        retry: Retry | None = None,
    ) -> None:
        self.client = client
        self.retry = retry  # of the looks it schedules (re-checks, follow-ups)
        self.store = store
        self.queue = queue
        self.schedule = RecheckSchedule.after(recheck_intervals)
        self.executor = executor
        self.audit = audit
        self.dispatcher = dispatcher

    def process(self, session_id: str, trigger: str, asked_at: int | None = None) -> Look:
        """Look at the session, unless a look that started after ``asked_at`` (Redis clock, µs;
        None: now) is done or under way."""
        if trigger == FOLLOW_UP and not self.store.requested(session_id):
            return Look(session_id, Result.COVERED)  # the holder took the request over, as planned
        lease = self.store.acquire_or_hand_off(session_id, asked_at)
        if isinstance(lease, HandedOff):
            self._schedule_follow_up(lease)
            return Look(session_id, Result.COALESCED)
        # Covered: a look that began after our event is done. Let go as a round that began then
        # would, which also answers the requests left meanwhile by jobs that found the session
        # busy (their follow-ups then fetch nothing), unless one asked after that look.
        if lease.answers(asked_at) and self.store.release_if_idle(lease, lease.covered):
            return Look(session_id, Result.COVERED)
        decided: Look | None = None
        try:
            while True:
                started = self.store.begin_round(lease)
                look = self._round(lease, trigger)
                if look.result is Result.DECIDED:
                    decided = look  # a later round of the same job must not hide it
                if self.store.release_if_idle(lease, started):
                    return look if decided is None or look.result is Result.DECIDED else decided
        except BaseException:
            self.store.release(lease)
            raise

    def session_for_check(self, check_id: str) -> str | None:
        """The session a check belongs to: from the index the workers keep, else found through the
        check's client (its newest few sessions)."""
        known = self.store.session_for_check(check_id)
        if known is not None:
            return known
        client_id = self.client.get_check(check_id).model.client_id
        if not client_id:
            return None
        if not is_complycube_id(client_id):
            raise InvalidId("the check's clientId", SHAPE)
        page = self.client.list_sessions(clientId=client_id, pageSize=MAX_CLIENT_SESSIONS_SEARCHED).model
        for summary in page.items:
            if not is_complycube_id(summary.id):
                continue  # never requested: it cannot be read, so it cannot be the one
            session = self.client.get_session(summary.id).model
            ids = [ref.check_id for ref in session.all_related_checks]
            self.store.index_checks(session.id, ids)
            if check_id in ids:
                return session.id
        return None

    # --- one round: fetch, reconcile, judge, record --------------------------------------------

    def _round(self, lease: Lease, trigger: str) -> Look:
        rec = self._fetch_and_reconcile(lease.session_id, trigger)
        waited = 0.0
        if rec.status is Status.COMPLETE and rec.pending:
            now = time.time()
            waited = self.schedule.waited(now - self.store.pending_since(rec.session_id, now), trigger)
        else:
            self.store.clear_pending(rec.session_id)
        bound = log.bind(session_id=rec.session_id, status=rec.status.value, trigger=trigger)
        match judge(rec, waited, self.schedule):
            case Progress(status):
                self.store.record_progress(rec.session_id, status.value)
                bound.info("session.progress")
                return Look(rec.session_id, Result.PROGRESS, status=status.value)
            case Wait() as wait:
                self._schedule_recheck(rec.session_id, wait)
                bound.info("session.waiting", pending=list(rec.pending), recheck_in=wait.delay)
                return Look(rec.session_id, Result.WAITING, status=rec.status.value)
            case Decide(verdict):

                def make(previous: Decision | None) -> Decision:
                    return make_decision(
                        rec, verdict, decision_id="dec_" + secrets.token_hex(10),
                        supersedes=previous.decision_id if previous else None,
                        decided_at=format_time(datetime.now(UTC)), trigger=trigger,
                    )  # fmt: skip

                return self._commit(lease, rec, make, bound)

    def _commit(
        self,
        lease: Lease,
        rec: Reconciliation,
        make: Callable[[Decision | None], Decision],
        bound: BoundLogger,
    ) -> Look:
        committed, decision = self.store.commit(
            lease, rec.fingerprint, make, on_new=self.dispatcher.enqueue, recall=self.audit.latest_decision
        )
        if committed is Committed.STALE or decision is None:
            bound.warning("session.stale", fence=lease.fence)
            return Look(rec.session_id, Result.STALE, status=rec.status.value)
        # Also when unchanged: a worker that died between Redis and the database left it out.
        self.audit.record_decision(decision)
        new = committed is Committed.NEW
        if new:
            DECISIONS.labels(kind=decision.kind.value, outcome=decision.outcome or decision.status).inc()
        result = Result.DECIDED if new else Result.UNCHANGED
        bound.info(
            f"session.{result.value}",
            decision_id=decision.decision_id, outcome=decision.outcome, kind=decision.kind.value,
            needs_review=decision.needs_review, supersedes=decision.supersedes if new else None,
            discrepancies=[d["issue"] for d in decision.discrepancies],
            actions=[p.action for p in self.dispatcher.planned(decision)] if new else None,
        )  # fmt: skip
        return Look(rec.session_id, result, decision.decision_id, decision.outcome, rec.status.value)

    def _fetch_and_reconcile(self, session_id: str, trigger: str) -> Reconciliation:
        fetched = self.client.get_session(session_id)
        session = fetched.model
        ids = [ref.check_id for ref in session.all_related_checks]
        self.store.index_checks(session_id, ids)
        # Still running: the session alone says so, and its checks cannot decide anything yet.
        checks = self.client.session_checks(session, self.executor.map) if needs_checks(session) else {}
        rec = reconcile(session, {cid: c.model if c else None for cid, c in checks.items()})
        raw_checks = {cid: c.raw if c else None for cid, c in checks.items()}
        self.audit.record_snapshot(session_id, rec.fingerprint, trigger, fetched.raw, raw_checks)
        return rec

    def _schedule_recheck(self, session_id: str, wait: Wait) -> None:
        """Enqueue one look at the session at the schedule's next point; one job per point."""
        with contextlib.suppress(DuplicateJobError):  # already scheduled by an earlier round
            self.queue.enqueue_in(
                timedelta(seconds=wait.delay),
                JobFunction.PROCESS_SESSION,
                session_id=session_id,
                trigger=self.schedule.trigger(wait.recheck),
                job_id=f"recheck-{_job_safe(session_id)}-{wait.recheck}",
                unique=True,
                result_ttl=DAY,
                retry=self.retry,
            )

    def _schedule_follow_up(self, handed: HandedOff) -> None:
        """In case the holder dies before taking our request over: one look after its lease is over,
        per lease (its fence), which does nothing when the request was taken over meanwhile."""
        with contextlib.suppress(DuplicateJobError):  # another job handed off to this lease already
            self.queue.enqueue_in(
                timedelta(milliseconds=self.store.lock_ms + 1000),
                JobFunction.PROCESS_SESSION,
                session_id=handed.session_id,
                trigger=FOLLOW_UP,
                job_id=f"follow-up-{_job_safe(handed.session_id)}-{handed.fence}",
                unique=True,
                result_ttl=0,
                failure_ttl=DAY,
                retry=self.retry,
            )


def _job_safe(session_id: str) -> str:
    return job_id_part(session_id, 32)
