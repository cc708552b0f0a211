"""The worker's watch: a thread that, every recovery interval, looks after the fleet and what it
stands on, whichever workers are alive.

Each tick:

- sweeps for the jobs of dead workers and keeps the maintenance clock (workers.recovery);
- keeps this worker on the fleet's list (``keys.WORKERS_ALIVE``), and re-registers it with RQ when
  its registration is gone (a Redis that came back empty forgot it: `cubehook status` would show a
  working fleet as dead);
- compares Redis's epoch with the audit trail's (workers.epoch) and, on a data loss, queues the
  recovery at once;
- probes the audit database, and ComplyCube while it is known to be down (so the gauge comes back
  without traffic), for the gauges and the one line per outage (workers.outages).

A failure of one part never stops the others, nor the thread.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import text

from service import keys
from service.log import get_logger
from service.rq_jobs import JobFunction, job_retry
from service.settings import DAY, Settings
from workers.epoch import Epoch
from workers.outages import DATABASE_ERRORS, HEALTH, Dependency
from workers.recovery import Recovery
from workers.scriptload import IntakeScripts

if TYPE_CHECKING:
    from rq.worker.base import BaseWorker

    from workers.runtime import Runtime

log = get_logger("cubehook.watch")
COMPLYCUBE_PROBE_SECONDS = 15.0


class Watch(threading.Thread):
    """Every recovery interval: the sweep, the maintenance clock, the fleet list, the epoch, and
    the probes (see the module's docstring)."""

    def __init__(
        self, recovery: Recovery, settings: Settings, queue: Queue, runtime: Runtime | None = None
    ) -> None:
        super().__init__(name="cubehook-watch", daemon=True)
        self.recovery = recovery
        self.settings = settings
        self.queue = queue
        self.redis: Redis = queue.connection
        self.runtime = runtime
        self.worker: BaseWorker | None = None  # the RQ worker now at work (a new one after an outage)
        self.stopped = threading.Event()
        self.epoch = Epoch(self.redis, runtime.audit, self._recover) if runtime is not None else None
        self.scripts = IntakeScripts(self.redis, settings)
        self._probing = threading.Lock()
        self._probed_at = 0.0

    def run(self) -> None:
        while not self.stopped.is_set():
            self.tick()
            self.stopped.wait(self.settings.recovery_interval_seconds)

    def tick(self) -> None:
        self._redis_part()
        self._database_part()
        self._complycube_part()

    # --- Redis: the sweep, the maintenance clock, the fleet, the epoch ----------------------------

    def _redis_part(self) -> None:
        try:
            self.recovery.sweep()
            HEALTH.saw(Dependency.REDIS, up=True)
            self._keep_registered()
            self.scripts.ensure()  # the intake's, which the web may only run (workers.scriptload)
            interval = self.settings.maintenance_interval_seconds
            if interval:
                slot = self.recovery.claim_maintenance(interval, self._enqueue_maintenance)
                if slot is not None:
                    log.info("maintenance.queued", slot=slot)
        except RedisError as exc:  # Redis away: said once (workers.outages); the next tick tries again
            HEALTH.saw(Dependency.REDIS, up=False, error=f"{type(exc).__name__}: {exc}")
            return
        except Exception:
            log.exception("watch.failed")  # a bug: keep watching, but a person must look
        if self.epoch is not None:
            try:
                self.epoch.check()
            except (RedisError, *DATABASE_ERRORS):
                pass  # either is away: said by its own probe; compared again next tick
            except Exception:
                log.exception("watch.epoch_failed")

    def _keep_registered(self) -> None:
        worker = self.worker
        if worker is None:
            return
        until = int(time.time() * 1000 + 3 * self.settings.recovery_interval_seconds * 1000)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.WORKERS_ALIVE, {worker.name: until})
            pipe.zremrangebyscore(keys.WORKERS_ALIVE, 0, int(time.time() * 1000) - 60_000)
            pipe.exists(worker.key)
            *_, registered = pipe.execute()
        # Born (RQ's bootstrap ran: it registers the worker itself first) and still the one at work.
        if registered or worker.birth_date is None or self.worker is not worker:
            return
        try:
            worker.register_birth()  # type: ignore[no-untyped-call]
        except ValueError:
            return  # registered meanwhile (by RQ, starting): nothing was lost
        log.warning("worker.reregistered", worker=worker.name, reason="its RQ registration was gone")

    def _enqueue_maintenance(self, pipe: Pipeline, slot: int) -> None:
        job = self.queue.create_job(
            JobFunction.MAINTENANCE, job_id=f"maintenance-{slot}", result_ttl=DAY, failure_ttl=DAY,
            timeout=self.settings.job_timeout_seconds, description="maintenance: watchdog, backfill, ledger",
            retry=job_retry(self.settings.job_retry_intervals),
        )  # fmt: skip
        self.queue.enqueue_job(job, pipeline=pipe)

    def _recover(self, epoch: str) -> None:
        """Redis lost its data: the backfill and the ledger's reconciliation, now, once per loss."""
        self.queue.enqueue(
            JobFunction.MAINTENANCE, kwargs={"recover": True}, job_id=f"maintenance-recover-{epoch}",
            result_ttl=DAY, failure_ttl=DAY, timeout=self.settings.job_timeout_seconds, at_front=True,
            description="maintenance after a Redis data loss: backfill, ledger",
            retry=job_retry(self.settings.job_retry_intervals),
        )  # fmt: skip

    # --- the database and ComplyCube -----------------------------------------------------------------

    def _database_part(self) -> None:
        if self.runtime is None:
            return
        try:
            with self.runtime.audit.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DATABASE_ERRORS as exc:
            HEALTH.saw(Dependency.DATABASE, up=False, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        else:
            HEALTH.saw(Dependency.DATABASE, up=True)

    def _complycube_part(self) -> None:
        """While ComplyCube is known to be down, a cheap call every COMPLYCUBE_PROBE_SECONDS, on a
        thread of its own (the client's retries must not hold the sweep up)."""
        runtime = self.runtime
        # Not at start: every call is on the key's rate limit, and a new worker's first job tells
        # within seconds (its gauge reads 1 until then; the alert takes the fleet's max).
        if runtime is None or not HEALTH.is_down(Dependency.COMPLYCUBE):
            return
        if time.monotonic() - self._probed_at < COMPLYCUBE_PROBE_SECONDS:
            return
        if not self._probing.acquire(blocking=False):
            return
        self._probed_at = time.monotonic()

        def probe() -> None:
            try:
                runtime.client.list_webhooks()  # its answer sets the gauge (workers.complycube.client)
            except Exception as exc:
                log.debug("complycube.probe_failed", error=type(exc).__name__)
            finally:
                self._probing.release()

        threading.Thread(target=probe, name="cubehook-probe", daemon=True).start()
