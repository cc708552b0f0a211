"""A job that should not go on now is put back for later, as a fresh scheduled job: not failed, no
RQ retry spent, its worker free at once.

Two reasons. An outage of what the job needs (Redis, the audit database, ComplyCube's 5xx or
timeouts: workers.outages) puts it back after 5 s, doubling per put-back to a minute, for as long
as the outage lasts: nothing in an outage needs a person per job, so no job of it is dead-lettered.
And ComplyCube's rate limit: a 429 that outlasts the retries a job may wait for
(``UpstreamRateLimited``) puts the job back after ComplyCube's ``Retry-After`` when it sent one,
else after the back-off ComplyCube advises, exponential from 30 s (30, 60, 120, ... at most 15
minutes; https://docs.complycube.com/api-reference/rate-limits), with jitter so that jobs put
back together do not return together, counted per job.

The copy runs the same function with the same arguments under a derived id, ``<first id>-r<n>``,
enqueued as unique: a re-run of the original after a crash cannot put it back twice. It keeps the
original's timeout, time-to-lives and retries left. An event's copy still counts as that event:
its de-duplication key and acceptance time come from the event id it carries, not the job's id.
"""

from __future__ import annotations

import contextlib
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec

from redis.exceptions import RedisError
from rq import Retry, get_current_job
from rq.exceptions import DuplicateJobError
from rq.job import Job

from service.errors import UpstreamRateLimited
from service.events import format_time
from service.log import get_logger
from service.rq_jobs import rq_queue
from workers import runtime
from workers.outages import HEALTH, JOB_WAITS, Dependency, unavailable
from workers.pipeline import Result

log = get_logger("cubehook.reschedule")
P = ParamSpec("P")
FIRST_ID, PUT_BACK, RATE_LIMITED = "first_id", "put_back", "rate_limited"  # job.meta keys
BACKOFF_FIRST_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 900.0
OUTAGE_FIRST_SECONDS, OUTAGE_CAP_SECONDS = 5.0, 60.0
WAITED = "waited"  # job.meta: times put back for an outage
WAITING_SINCE = "waiting_since"  # job.meta: when it was first put back for one (s)
_jitter = random.Random()  # noqa: S311 - spreading retries, not secrets
_CONTEXT = ("event_id", "event_type", "session_id", "trigger")  # the arguments worth a log field


@dataclass(frozen=True, slots=True)
class PutBack:
    job_id: str
    at: datetime

    def summary(self, reason: str) -> dict[str, str]:
        return {"result": reason, "next_job_id": self.job_id, "next_attempt_at": format_time(self.at)}


def put_back(job: Job, delay: float, **meta: float | bool) -> PutBack:
    """Schedule a copy of ``job`` ``delay`` seconds from now, with ``meta`` added to its own."""
    first = str(job.meta.get(FIRST_ID, job.id))
    count = int(job.meta.get(PUT_BACK, 0)) + 1
    job_id = f"{first}-r{count}"
    retries = job.retries_left or 0
    # A copy exists already when a run of this job was cut short after putting it back.
    with contextlib.suppress(DuplicateJobError):
        rq_queue(job.origin, job.connection).enqueue_in(
            timedelta(seconds=delay), job.func_name or "", args=job.args, kwargs=job.kwargs, job_id=job_id,
            unique=True, meta={**job.meta, FIRST_ID: first, PUT_BACK: count, **meta},
            retry=Retry(max=retries, interval=job.retry_intervals or 0) if retries else None,
            timeout=job.timeout, result_ttl=job.result_ttl, failure_ttl=job.failure_ttl,
        )  # fmt: skip
    return PutBack(job_id, datetime.now(UTC) + timedelta(seconds=delay))


def rate_limit_delay(retry_after: float | None, times_before: int, rng: random.Random = _jitter) -> float:
    """``Retry-After`` when ComplyCube sent one; else 30 s doubling per time this job was put back
    for the rate limit, at most 15 minutes, plus up to a quarter more."""
    if retry_after is not None:
        return retry_after
    base = min(BACKOFF_CAP_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(times_before, 10))
    return float(min(BACKOFF_CAP_SECONDS, base * rng.uniform(1.0, 1.25)))


def outage_delay(times_before: int, rng: random.Random = _jitter) -> float:
    """5 s doubling per time this job was put back for an outage, at most a minute, plus up to a
    quarter more: a short outage costs little, and a long one costs a job run a minute."""
    base = min(OUTAGE_CAP_SECONDS, OUTAGE_FIRST_SECONDS * 2 ** min(times_before, 10))
    return float(base * rng.uniform(1.0, 1.25))


def when_rate_limited(func: Callable[P, dict[str, Any]]) -> Callable[P, dict[str, Any]]:
    """Wrap a job function: a 429 beyond its retries, or an outage of what the job needs (Redis,
    the database, ComplyCube: workers.outages), puts the job back, no retry spent (one warning
    line, with the reason and the next attempt's time; no traceback: it is expected and handled).
    Anything else fails the job as before: RQ retries it, then dead-letters it."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        try:
            return func(*args, **kwargs)
        except UpstreamRateLimited as exc:
            job = get_current_job()
            if job is None:
                raise  # called outside RQ (a command): nothing to put back
            times = int(job.meta.get(RATE_LIMITED, 0))
            later = put_back(job, rate_limit_delay(exc.retry_after, times), **{RATE_LIMITED: times + 1})
            context = {k: v for k, v in job.kwargs.items() if k in _CONTEXT}
            log.warning(
                "job.rescheduled", reason="rate_limited", error=str(exc), retry_after=exc.retry_after,
                job_id=job.id, next_job_id=later.job_id, next_attempt_at=format_time(later.at), **context,
            )  # fmt: skip
            return later.summary(Result.RESCHEDULED)
        except Exception as exc:
            job = get_current_job()
            away = unavailable(exc)
            if job is None or away is None:
                raise
            return _wait_out(job, away, exc)

    return wrapper


def _wait_out(job: Job, away: Dependency, exc: Exception) -> dict[str, Any]:
    """Put ``job`` back until ``away`` is back. Through a Redis that is away nothing can be put
    back: the original error is raised, the job stays started, and the recovery sweep queues it
    again once its lease lapses (workers.recovery)."""
    HEALTH.saw(away, up=False, error=f"{type(exc).__name__}: {exc}")
    times = int(job.meta.get(WAITED, 0))
    since = float(job.meta.get(WAITING_SINCE, time.time()))
    if time.time() - since >= runtime.current().settings.outage_patience_seconds:
        raise exc  # waited long enough: it fails as any failure does (RQ's retries, then dead)
    try:
        later = put_back(job, outage_delay(times), **{WAITED: times + 1, WAITING_SINCE: since})
    except RedisError:
        raise exc from None
    function = (job.func_name or "?").rsplit(".", 1)[-1]
    JOB_WAITS.labels(function=function, reason=away.value).inc()
    context = {k: v for k, v in job.kwargs.items() if k in _CONTEXT}
    log.warning(
        "job.waiting", reason=away.value, error=f"{type(exc).__name__}: {str(exc)[:200]}", job_id=job.id,
        next_job_id=later.job_id, next_attempt_at=format_time(later.at), **context,
    )  # fmt: skip
    return later.summary(Result.WAITING_FOR)
