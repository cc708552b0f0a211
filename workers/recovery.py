"""Recovery from dead workers in seconds, and the periodic maintenance, whichever workers live.

RQ finds the job of a dead worker only once the job's heartbeat lapses (for RQ's SimpleWorker, the
job timeout plus 60 s, 360 s by default) and a worker next cleans its registries; and a job caught
between RQ's dequeue and its start is left in RQ's "intermediate" list for minutes. cubehook keeps
its own short lease instead: a worker sets a job's liveness key (workers.leases) before RQ records
the job as started, and renews it every few seconds while the job runs. The sweep below, run every
``CUBEHOOK_RECOVERY_INTERVAL_SECONDS`` by one worker of the fleet at a time, puts back at the front
of the queue every job whose worker stopped renewing:

- a job in RQ's started registry whose liveness key has lapsed (the worker died while running it,
  or between registering it and starting it);
- a job in the intermediate list, in no registry, with no liveness key, seen there by an earlier
  sweep (the worker died between dequeuing it and registering it);
- a scheduled job overdue by more than ``overdue_seconds`` (retries, re-checks and follow-ups run
  on RQ's scheduler, which one worker holds; when that worker dies its lock lapses only after 61 s).

Each put-back is one transaction that watches the job and its liveness key, so a job that finishes
meanwhile is left alone. A job put back more than ``MAX_RECOVERIES`` times (one that kills its
worker, say by exhausting its memory) goes to the failed registry with the reason, for an operator.
Running a job twice is safe by design: decisions are made once per session state and actions once
per decision (the ledger and the idempotency key).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.utils import parse_composite_key

from service import keys
from service.log import get_logger

log = get_logger("cubehook.recovery")

SWEEP_LOCK, LIMBO, MAINTENANCE_NEXT = keys.SWEEP_LOCK, keys.LIMBO, keys.MAINTENANCE_NEXT
RECOVERIES = "cubehook_recoveries"  # in job.meta
MAX_RECOVERIES = 3
# Workers cubehook starts are named with this prefix; a job a worker of another kind runs (a plain
# `rq worker` keeps no liveness key) is left to RQ's own clean-up.
WORKER_PREFIX = "cubehook-"
RECOVERABLE = (JobStatus.QUEUED, JobStatus.STARTED)


def alive_key(job_id: str) -> str:
    return keys.job_alive(job_id)


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)


class Recovery:
    """The fleet's sweep for jobs of dead workers, and the maintenance schedule."""

    def __init__(self, redis: Redis, queue: Queue, interval_seconds: float, overdue_seconds: float) -> None:
        self.redis = redis
        self.queue = queue
        self.interval_ms = max(1, int(interval_seconds * 1000))
        self.overdue = overdue_seconds

    def _now(self) -> float:
        seconds, micros = self.redis.time()
        return seconds + micros / 1_000_000

    def sweep(self, force: bool = False) -> SweepReport | None:
        """One sweep, unless another worker swept less than an interval ago (None then)."""
        if not self.redis.set(SWEEP_LOCK, secrets.token_hex(4), nx=True, px=self.interval_ms) and not force:
            return None
        report = SweepReport()
        started = self._sweep_started(report)
        self._sweep_limbo(started, report)
        self._promote_overdue(report)
        if report.requeued or report.failed or report.promoted:
            log.warning(
                "recovery.swept", requeued=report.requeued, failed=report.failed, promoted=report.promoted
            )
        return report

    # --- jobs of dead workers --------------------------------------------------------------------

    def _sweep_started(self, report: SweepReport) -> set[str]:
        """Put back the started jobs whose liveness key lapsed; return every started job's id."""
        registry = self.queue.started_job_registry
        entries = [_text(entry) for entry in self.redis.zrange(registry.key, 0, -1)]
        ids = set()
        for entry in entries:
            job_id, _execution_id = parse_composite_key(entry)
            ids.add(job_id)
            worker = self.redis.hget(Execution.from_composite_key(entry, self.redis).key, "worker_name")
            name = None if worker is None else _text(worker)
            if name is not None and not name.startswith(WORKER_PREFIX):
                continue  # not ours to judge: RQ's own clean-up handles it
            self._put_back(job_id, report, started_entry=entry)
        return ids

    def _sweep_limbo(self, started: set[str], report: SweepReport) -> None:
        """Put back jobs dequeued by a worker that died before registering them: in the
        intermediate list, in no registry, unclaimed, and seen so by an earlier sweep."""
        listed = {_text(i) for i in self.redis.lrange(self.queue.intermediate_queue_key, 0, -1)}
        seen = {_text(k) for k in self.redis.hkeys(LIMBO)}
        gone = [job_id for job_id in seen if job_id not in listed or job_id in started]
        if gone:
            self.redis.hdel(LIMBO, *gone)
        for job_id in listed - started:
            if self.redis.exists(alive_key(job_id)):
                continue  # a live worker is about to register it
            if job_id not in seen:
                # Dequeued a moment ago, perhaps by a live worker: look again next sweep.
                self.redis.hset(LIMBO, job_id, "1")
                continue
            self._put_back(job_id, report, limbo=True)
            self.redis.hdel(LIMBO, job_id)

    def _put_back(
        self, job_id: str, report: SweepReport, started_entry: str | None = None, limbo: bool = False
    ) -> None:
        registry_key = self.queue.started_job_registry.key
        with self.redis.pipeline() as pipe:
            try:
                # Watched: a job that finishes, or is claimed, between these reads and the writes
                # below changes one of them, and the transaction does nothing.
                pipe.watch(Job.key_for(job_id), alive_key(job_id))  # type: ignore[no-untyped-call]
                if pipe.exists(alive_key(job_id)):
                    return
                if started_entry is not None and pipe.zscore(registry_key, started_entry) is None:
                    return
                try:
                    job = Job.fetch(job_id, connection=self.redis, serializer=self.queue.serializer)
                except NoSuchJobError:
                    pipe.unwatch()
                    self._forget(job_id, started_entry)
                    return
                status = job.get_status(refresh=False)
                if status not in RECOVERABLE:
                    pipe.unwatch()
                    self._forget(job_id, started_entry)  # a leftover of a job that ended
                    return
                recoveries = int(job.meta.get(RECOVERIES, 0)) + 1
                pipe.multi()
                if started_entry is not None:
                    pipe.zrem(registry_key, started_entry)
                pipe.lrem(self.queue.intermediate_queue_key, 0, job_id)
                if recoveries > MAX_RECOVERIES:
                    reason = f"its worker died {MAX_RECOVERIES + 1} times while running it; not run again"
                    record_job_failure(job, reason, pipe)
                else:
                    job.meta[RECOVERIES] = recoveries
                    self.queue.enqueue_job(job, pipeline=pipe, at_front=True)
                pipe.execute()
            except WatchError:
                return  # it moved on by itself: nothing to recover
        (report.failed if recoveries > MAX_RECOVERIES else report.requeued).append(job_id)
        log.warning(
            "recovery.job_requeued" if recoveries <= MAX_RECOVERIES else "recovery.job_failed",
            job_id=job_id, where="dequeued" if limbo else "started", recoveries=recoveries,
        )  # fmt: skip

    def _forget(self, job_id: str, started_entry: str | None) -> None:
        with self.redis.pipeline() as pipe:
            if started_entry is not None:
                pipe.zrem(self.queue.started_job_registry.key, started_entry)
            pipe.lrem(self.queue.intermediate_queue_key, 0, job_id)
            pipe.execute()

    # --- overdue scheduled jobs --------------------------------------------------------------------

    def _promote_overdue(self, report: SweepReport) -> None:
        """Queue scheduled jobs RQ's scheduler left waiting (its holder died: its lock lapses after
        61 s). ZREM decides who moves a job, so two sweeps never queue it twice."""
        registry = self.queue.scheduled_job_registry
        cutoff = self._now() - self.overdue
        for raw in self.redis.zrangebyscore(registry.key, 0, cutoff):
            job_id = _text(raw)
            try:
                job = Job.fetch(job_id, connection=self.redis, serializer=self.queue.serializer)
            except NoSuchJobError:
                self.redis.zrem(registry.key, job_id)
                continue
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(registry.key)  # type: ignore[no-untyped-call]
                    if pipe.zscore(registry.key, job_id) is None:
                        continue  # RQ's scheduler moved it meanwhile
                    pipe.multi()
                    pipe.zrem(registry.key, job_id)
                    self.queue.enqueue_job(job, pipeline=pipe, at_front=job.should_enqueue_at_front())
                    pipe.execute()
                except WatchError:
                    continue
            report.promoted.append(job_id)

    # --- maintenance ------------------------------------------------------------------------------

    def claim_maintenance(
        self, interval_seconds: int, enqueue: Callable[[Pipeline, int], object]
    ) -> int | None:
        """When a maintenance run is due, claim it and queue it (``enqueue`` adds the job to the
        transaction that moves the next run one interval on), returning its slot (Redis time, s);
        else None. The first call of a fleet sets the first run one interval ahead."""
        now = int(self._now())
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(MAINTENANCE_NEXT)  # type: ignore[no-untyped-call]
                stored = pipe.get(MAINTENANCE_NEXT)
                due = int(stored) if stored else None
                first = due is None or due > now + interval_seconds  # new, or the interval shrank
                if not first and due is not None and now < due:
                    return None
                pipe.multi()
                pipe.set(MAINTENANCE_NEXT, now + interval_seconds)
                if not first and due is not None:
                    enqueue(pipe, due)
                pipe.execute()
                return None if first else due
            except WatchError:
                return None  # another worker claimed it


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
