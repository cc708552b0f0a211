"""Outages of what the workers stand on (Redis, the audit database, ComplyCube's API): told apart
from failures, waited out, said once.

A worker never exits because Redis, the database or ComplyCube is away. What it does instead:

- **Waits**: ``wait_for`` retries a probe with back-off until it answers (or the process is told
  to stop), saying so in one warning line when the outage starts and one info line when it ends,
  never a line per retry.
- **Puts jobs back**: a job that fails because one of them is away (``unavailable``) is put back
  for later as a fresh scheduled job (workers.reschedule), without spending a retry: an outage of
  any length leaves no dead letter, since nothing in it needs a person (the alert on the outage
  itself does). One warning line per put-back, ``job.waiting``, with the reason and the next time.
- **Tells Prometheus**: the gauges below, in the workers' registry (service.metrics.WORKER), served
  on the worker's own metrics port and read by the alert rules (deploy/prometheus/alerts.yaml);
  never in the web's, which would export them as a 0 that never moves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from prometheus_client import Counter, Gauge
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.errors import UpstreamMalformed, UpstreamRateLimited, UpstreamUnavailable
from service.log import get_logger
from service.metrics import WORKER

log = get_logger("cubehook.outages")

WORKER_REDIS_UP = Gauge(
    "cubehook_worker_redis_up", "The worker's last Redis call succeeded (1), or not (0)", registry=WORKER
)
REDIS_OUTAGES = Counter("cubehook_redis_outages", "Redis outages this worker rode out", registry=WORKER)
REDIS_DATA_LOSS = Counter(
    "cubehook_redis_data_loss", "Redis came back without cubehook's data (its epoch marker changed)",
    registry=WORKER,
)  # fmt: skip
DATABASE_UP = Gauge(
    "cubehook_database_up", "The worker's last probe of the audit database succeeded", registry=WORKER
)
COMPLYCUBE_UP = Gauge(
    "cubehook_complycube_up", "ComplyCube's last answer to this worker was not a 5xx, timeout or failure",
    registry=WORKER,
)  # fmt: skip
JOB_WAITS = Counter(
    "cubehook_job_waits",
    "Jobs put back, no retry spent, while what they need is away",
    ["function", "reason"],
    registry=WORKER,
)
ACTIONS_REQUEUED = Counter(
    "cubehook_actions_requeued",
    "Actions not sent, with no live job, queued again by the ledger",
    ["reason"],
    registry=WORKER,
)
for _gauge in (WORKER_REDIS_UP, DATABASE_UP, COMPLYCUBE_UP):
    _gauge.set(1)  # until a probe says otherwise: a worker that just started has seen no outage


class Dependency(StrEnum):
    REDIS = "redis"
    DATABASE = "database"
    COMPLYCUBE = "complycube"


GAUGES = {
    Dependency.REDIS: WORKER_REDIS_UP, Dependency.DATABASE: DATABASE_UP, Dependency.COMPLYCUBE: COMPLYCUBE_UP,
}  # fmt: skip
DATABASE_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def unavailable(exc: BaseException) -> Dependency | None:
    """Which dependency ``exc`` says is away, or None when it is a failure of another kind.

    ComplyCube's 5xx, timeouts and refused connections count; its rate limit does not (it has a
    put-back of its own, after Retry-After) and neither does a malformed answer (a person may need
    to look). A database error counts when the DBAPI says the connection failed (OperationalError:
    refused, reset, the server shutting down), not when a statement is wrong."""
    if isinstance(exc, RedisError):
        return Dependency.REDIS
    if isinstance(exc, DATABASE_ERRORS):
        return Dependency.DATABASE
    if isinstance(exc, UpstreamUnavailable) and not isinstance(exc, UpstreamRateLimited | UpstreamMalformed):
        return Dependency.COMPLYCUBE
    return None


@dataclass
class Health:
    """Whether each dependency is up as this process last saw it; says each change once."""

    down_since: dict[Dependency, float] = field(default_factory=dict)
    # Whether changes are said in the log: by the worker (workers.worker), not by a command, whose
    # own error line says what failed.
    speaks: bool = False
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, what: Dependency, up: bool, error: str = "") -> None:
        GAUGES[what].set(1 if up else 0)
        with self._guard:
            was_down = what in self.down_since
            if up and was_down:
                lasted = time.monotonic() - self.down_since.pop(what)
            elif not up and not was_down:
                self.down_since[what] = time.monotonic()
                if what is Dependency.REDIS:
                    REDIS_OUTAGES.inc()
        if not self.speaks:
            return
        if up and was_down:
            log.info(f"{what.value}.back", down_seconds=round(lasted, 1))
        elif not up and not was_down:
            hint = "waiting for it: nothing is lost"
            log.warning(f"{what.value}.unavailable", error=error[:300], hint=hint)

    def is_down(self, what: Dependency) -> bool:
        with self._guard:
            return what in self.down_since


HEALTH = Health()  # one per process


class RQOutageChatter(logging.Filter):
    """RQ's own lines about a Redis it cannot reach (an ERROR per reconnection attempt of its
    dequeue, a traceback when its scheduler process meets the outage), taken for what they say:
    the outage, told once by ``HEALTH``; the lines themselves are dropped."""

    SAYS_REDIS_IS_AWAY = ("could not connect to Redis instance", "Redis connection timeout")

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        away = any(s in text for s in self.SAYS_REDIS_IS_AWAY)
        if not away and record.exc_info and isinstance(record.exc_info[1], RedisError):
            away = True
        if away:
            failure = record.exc_info[1] if record.exc_info else None
            said = (
                f"{type(failure).__name__}: {failure}"
                if failure
                else (text % record.args if record.args else text)
            )
            HEALTH.saw(Dependency.REDIS, up=False, error="RQ: " + said.splitlines()[0][:200])
        return not away


def quiet_rq_outage_chatter() -> None:
    for name in ("rq.worker", "rq.scheduler"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RQOutageChatter) for f in logger.filters):
            logger.addFilter(RQOutageChatter())


def wait_until_reachable(redis: Redis, probe_database: Callable[[], object]) -> None:
    """A process starting (a worker, the console) while Redis or the database is away (everything
    restarting at once) waits for them, however long, saying so once each, rather than exit into
    a crash loop."""
    never = lambda: False  # noqa: E731 - it waits until killed
    wait_for(Dependency.REDIS, redis.ping, never, retry_on=(RedisError,))
    wait_for(Dependency.DATABASE, probe_database, never, retry_on=DATABASE_ERRORS)


def wait_for(
    what: Dependency,
    probe: Callable[[], object],
    stopped: Callable[[], bool],
    cap_seconds: float = 5.0,
    retry_on: tuple[type[Exception], ...] = (Exception,),
) -> bool:
    """Call ``probe`` until it succeeds (True) or ``stopped()`` (False): back-off from 0.2 s to
    ``cap_seconds``; one line when the outage starts and one when it ends (``Health``). An error
    not in ``retry_on`` is raised: it is not an outage (a wrong setting, say)."""
    pause = 0.2
    while not stopped():
        try:
            probe()
        except retry_on as exc:
            HEALTH.saw(what, up=False, error=f"{type(exc).__name__}: {exc}")
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline and not stopped():
                time.sleep(min(0.2, pause))
            pause = min(cap_seconds, pause * 2)
            continue
        HEALTH.saw(what, up=True)
        return True
    return False
