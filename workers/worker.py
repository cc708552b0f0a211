"""The `cubehook worker` process: RQ's worker, plus a lease on every job it runs, a watch thread
(workers.watch) that sweeps for the jobs of dead workers, keeps the maintenance clock and probes
what the worker stands on, and a loop that rides out Redis outages instead of exiting.

Nothing here depends on which worker holds RQ's scheduler: every worker runs the watch, one of
them at a time does each sweep and claims each maintenance run, so both go on as long as any
worker lives.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import threading
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.scheduler import RQScheduler

from service.errors import ConfigError, CubehookError, PermanentError
from service.log import env_file_read_said, get_logger
from service.redis import is_sentinel_managed, redis_client
from service.rq_jobs import JOB_OPTIONS, JobFunction, rq_queue
from service.settings import Settings, WorkerClass
from workers.dispatch import next_attempt
from workers.leases import KEEPER
from workers.outages import HEALTH, Dependency, quiet_rq_outage_chatter, wait_for
from workers.recovery import WORKER_PREFIX, Recovery, alive_key
from workers.runtime import Runtime
from workers.watch import Watch

log = get_logger("cubehook.worker")
OVERDUE_SECONDS = 10.0  # a scheduled job this late: RQ's scheduler is not moving it


class PatientScheduler(RQScheduler):
    """RQ's scheduler (its own process, moving due retries and re-checks to the queue), which
    waits a Redis outage out instead of raising out of its loop: RQ's ends its process on any
    error, and a worker would go on with no scheduler until it restarts (the recovery sweep's
    promotion of overdue jobs would cover, but late). The outage is said by the worker."""

    def work(self) -> None:
        self._install_signal_handlers()  # type: ignore[no-untyped-call]
        while not self._stop_requested:
            try:
                self.register_birth()
                break
            except RedisError:
                time.sleep(self.interval)
        while not self._stop_requested:
            try:
                if self.should_reacquire_locks:
                    self.acquire_locks()  # type: ignore[no-untyped-call]
                self.heartbeat()  # type: ignore[no-untyped-call]
                self.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            except RedisError:
                pass  # the next round tries again; a lock lost meanwhile is dropped by heartbeat()
            time.sleep(self.interval)
        with contextlib.suppress(RedisError):  # its locks lapse by themselves
            self.stop()  # type: ignore[no-untyped-call]


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
    stop_asked: bool = False  # a signal asked RQ's loop to stop (as opposed to an error ending it)

    def request_stop(self, signum: int, frame: object) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)  # type: ignore[misc]

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's own (rq/worker/base.py, BaseWorker._start_scheduler), with a scheduler that rides
        out Redis outages instead of ending its process (PatientScheduler)."""
        worker: Any = self  # RQ's worker, this class is mixed into
        scheduler: Any = PatientScheduler(
            worker.queues, connection=worker.connection,
            logging_level=logging_level if logging_level is not None else worker.log.level,
            date_format=date_format, log_format=log_format, serializer=worker.serializer,
        )  # fmt: skip
        worker.scheduler = scheduler
        scheduler.acquire_locks()
        if scheduler.acquired_locks:
            if burst:
                try:
                    scheduler.register_birth()
                    scheduler.enqueue_scheduled_jobs()
                finally:
                    scheduler.release_locks()
                    scheduler.register_death()
            else:
                scheduler.start()

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
    """Work the queue until stopped (or, with ``burst``, until it is empty), through any number of
    Redis outages.

    RQ's work loop quits on an error it does not expect, and a Redis call that fails outside its
    dequeue (a job's bookkeeping, the heartbeat after a job) is one: the worker would exit, and a
    fleet under Kubernetes would crash-loop after every Redis blip. So when RQ's loop ends without
    being asked to, the worker waits for Redis (workers.outages: one warning line, a gauge), then
    starts a new RQ worker under a new name and goes on. A job cut short by the outage stays
    "started"; its lease lapses and the recovery sweep queues it again (workers.recovery)."""
    # RQ raises its connection's socket timeout to suit its blocking dequeue; the leases and the
    # watch keep their own connection, with the short timeouts, so an outage is noticed in seconds.
    rq_redis, own_redis = redis_client(settings), redis_client(settings)
    refuse_unsupported(settings, rq_redis)
    queue = rq_queue(settings.queue_name, rq_redis)
    own_queue = rq_queue(settings.queue_name, own_redis)
    watch = Watch(build_recovery(settings, own_redis), settings, own_queue, built)
    stop = threading.Event()
    quiet_rq_outage_chatter()
    watch.start()
    try:
        while not stop.is_set():
            worker = _worker(settings, queue, rq_redis, own_redis)
            watch.worker = worker
            log.info(
                "worker.starting", queue=settings.queue_name, burst=burst,
                worker_class=settings.worker_class.value, worker=worker.name, env_file=env_file_read_said(),
            )  # fmt: skip
            try:
                worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
            except RedisError as exc:  # RQ's teardown (its death registration) met the outage
                HEALTH.saw(Dependency.REDIS, up=False, error=f"{type(exc).__name__}: {exc}")
            watch.worker = None  # it is not at work: never to be registered again
            if burst or worker.stop_asked:
                break
            _trap_signals(stop)  # RQ's handlers would call Redis from inside the wait
            log.warning("worker.restarting", worker=worker.name, reason="RQ's work loop ended on an error")
            wait_for(Dependency.REDIS, rq_redis.ping, stop.is_set)
            _retire(worker)
    finally:
        watch.stopped.set()
        rq_redis.close()


def _worker(
    settings: Settings, queue: Queue, rq_redis: Redis, own_redis: Redis
) -> LeasedSimpleWorker | LeasedForkWorker:
    worker_class: type[LeasedSimpleWorker] | type[LeasedForkWorker] = (
        LeasedSimpleWorker if settings.worker_class is WorkerClass.SIMPLE else LeasedForkWorker
    )
    options: dict[str, Any] = {"maintenance_interval": settings.worker_maintenance_seconds}
    name = WORKER_PREFIX + secrets.token_hex(8)
    worker = worker_class([queue], connection=rq_redis, name=name, **options, **JOB_OPTIONS)
    worker.leases, worker.lease_ms = own_redis, settings.job_lease_seconds * 1000
    return worker


def _retire(worker: LeasedSimpleWorker | LeasedForkWorker) -> None:
    """What RQ's teardown could not do while Redis was away: its death on record, its command
    channel's thread stopped (it would go on listening beside the new worker's)."""
    steps: tuple[Any, ...] = (worker.register_death, worker.unsubscribe)
    for step in steps:
        try:
            step()
        except Exception as exc:  # best effort: the new worker does not depend on it
            log.debug("worker.retire_failed", worker=worker.name, step=step.__name__, error=str(exc))


def _trap_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` while no RQ worker is at work."""

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
