"""The `cubehook worker` process: RQ's worker, plus a lease on every job it runs, and a watch thread
that sweeps for the jobs of dead workers and keeps the maintenance clock (workers.recovery).

Nothing here depends on which worker holds RQ's scheduler: every worker runs the watch, one of
them at a time does each sweep and claims each maintenance run, so both go on as long as any
worker lives.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker
from rq.job import Job

from service.errors import ConfigError, CubehookError, PermanentError
from service.log import get_logger
from service.redis import is_sentinel_managed, redis_client
from service.rq_jobs import JOB_OPTIONS, JobFunction, rq_queue
from service.settings import DAY, Settings, WorkerClass
from workers.dispatch import next_attempt
from workers.leases import KEEPER
from workers.recovery import WORKER_PREFIX, Recovery, alive_key
from workers.runtime import Runtime

log = get_logger("cubehook.worker")
OVERDUE_SECONDS = 10.0  # a scheduled job this late: RQ's scheduler is not moving it


class LeasedJobs:
    """Mixed into RQ's worker classes: the job's liveness key is taken before RQ registers the job
    as started, kept renewed while it runs, and given up once RQ has recorded how it ended. And
    failures are told as operators need them: an expected one that will be retried (ComplyCube's
    429/5xx, an action's target down) is one warning line with the next attempt's time; one that
    leaves the job dead, one ERROR line; a traceback only for what cubehook did not expect (a bug).
    The traceback of every failure stays in RQ's failed registry (`cubehook dlq show`)."""

    leases: Redis
    lease_ms: int
    name: str

    def execute_job(self, job: Job, queue: Queue) -> None:
        held = KEEPER.take(self.leases, alive_key(job.id), self.name, self.lease_ms)
        try:
            super().execute_job(job, queue)  # type: ignore[misc]
        finally:
            KEEPER.release(held)

    def handle_exception(self, job: Job, *exc_info: Any) -> None:  # noqa: ANN401 - RQ's signature
        failure = exc_info[1] if len(exc_info) > 1 else None
        if not isinstance(failure, CubehookError):
            super().handle_exception(job, *exc_info)  # type: ignore[misc]  # unexpected: RQ's traceback
            return
        if job.func_name == JobFunction.RUN_ACTION:
            return  # the action runner said it already: action.failed, or action.dead
        if isinstance(failure, PermanentError):
            return  # workers.jobs said it already: job.gave_up
        if job.retries_left:
            log.warning("job.retrying", job_id=job.id, error=str(failure), next_attempt_at=next_attempt(job))
        else:
            log.error("job.dead", job_id=job.id, error=str(failure), hint="cubehook dlq show " + job.id)


class LeasedSimpleWorker(LeasedJobs, SimpleWorker):
    """RQ's SimpleWorker (jobs run in the worker process), with job leases."""


class LeasedForkWorker(LeasedJobs, Worker):
    """RQ's Worker (a forked process per job), with job leases held by the parent."""


class Watch(threading.Thread):
    """Every recovery interval: a sweep for the jobs of dead workers, and the maintenance clock."""

    def __init__(self, recovery: Recovery, settings: Settings, queue: Queue) -> None:
        super().__init__(name="cubehook-watch", daemon=True)
        self.recovery = recovery
        self.settings = settings
        self.queue = queue
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.tick()
            self.stopped.wait(self.settings.recovery_interval_seconds)

    def tick(self) -> None:
        try:
            self.recovery.sweep()
            interval = self.settings.maintenance_interval_seconds
            if interval:
                slot = self.recovery.claim_maintenance(interval, self._enqueue_maintenance)
                if slot is not None:
                    log.info("maintenance.queued", slot=slot)
        except RedisError as exc:  # Redis away: the next tick tries again
            log.warning("watch.redis_unavailable", error=str(exc))
        except Exception:
            log.exception("watch.failed")  # a bug: keep watching, but a person must look

    def _enqueue_maintenance(self, pipe: Pipeline, slot: int) -> None:
        job = self.queue.create_job(
            JobFunction.MAINTENANCE, job_id=f"maintenance-{slot}", result_ttl=DAY, failure_ttl=DAY,
            timeout=self.settings.job_timeout_seconds, description="maintenance: watchdog, backfill",
        )  # fmt: skip
        self.queue.enqueue_job(job, pipeline=pipe)


def build_recovery(settings: Settings, redis: Redis) -> Recovery:
    queue = rq_queue(settings.queue_name, redis)
    overdue = max(OVERDUE_SECONDS, 2 * settings.recovery_interval_seconds)
    return Recovery(redis, queue, settings.recovery_interval_seconds, overdue)


def refuse_unsupported(settings: Settings, redis: Redis) -> None:
    """RQ 3's forking worker starts each job's process with a connection rebuilt from the pool's
    host and port (rq/worker/worker_classes.py, fork_work_horse): a Sentinel pool has neither, so
    the job would reach whatever listens on localhost. Raises ConfigError for that pair."""
    if settings.worker_class is WorkerClass.FORK and is_sentinel_managed(redis):
        raise ConfigError(
            "CUBEHOOK_WORKER_CLASS=fork cannot run on a Sentinel URL (RQ's job processes reconnect by "
            "host and port): use CUBEHOOK_WORKER_CLASS=simple"
        )


def run(settings: Settings, built: Runtime, burst: bool) -> None:
    """Work the queue until stopped (or, with ``burst``, until it is empty)."""
    # RQ raises its connection's socket timeout to suit its blocking dequeue; the leases and the
    # watch keep their own connection, with the short timeouts, so an outage is noticed in seconds.
    rq_redis, own_redis = redis_client(settings), redis_client(settings)
    refuse_unsupported(settings, rq_redis)
    queue = rq_queue(settings.queue_name, rq_redis)
    own_queue = rq_queue(settings.queue_name, own_redis)
    watch = Watch(build_recovery(settings, own_redis), settings, own_queue)
    worker_class = LeasedSimpleWorker if settings.worker_class is WorkerClass.SIMPLE else LeasedForkWorker
    options: dict[str, Any] = {"maintenance_interval": settings.worker_maintenance_seconds}
    name = WORKER_PREFIX + secrets.token_hex(8)
    worker = worker_class([queue], connection=rq_redis, name=name, **options, **JOB_OPTIONS)
    worker.leases, worker.lease_ms = own_redis, settings.job_lease_seconds * 1000
    watch.start()
    log.info(
        "worker.starting", queue=settings.queue_name, burst=burst, worker_class=settings.worker_class.value,
        worker=worker.name,
    )  # fmt: skip
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
    finally:
        watch.stopped.set()
        rq_redis.close()
