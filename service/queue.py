"""Enqueue an event: the only code that knows how jobs are named, de-duplicated and retried.

Accepting an event is one Redis transaction: the event's "seen" key and the RQ job are written
together or not at all (WATCH on the seen key, then MULTI/EXEC). So a duplicate never makes a
second job, even when both copies arrive at once, and a failed write leaves nothing behind: the
event is not marked seen and ComplyCube's retry succeeds later.

The seen key outlives the job on purpose: RQ deletes a finished job after its result TTL, and the
key is the only defence against a replayed delivery (ComplyCube's signature has no timestamp).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from dataclasses import asdict, dataclass
from enum import StrEnum

from redis import Redis
from redis.exceptions import RedisError, WatchError
from rq import Queue, Retry

from service.errors import QueueUnavailable
from service.settings import DAY, Settings

# The worker function, named by path so the web process never imports the workers.
PROCESS_EVENT = "workers.jobs.process_event"
RECORD_EVENT = "workers.jobs.record_event"
SEEN_PREFIX = "cubehook:seen:"
LAST_EVENT = "cubehook:last_event_at"  # when the last event was accepted: metrics, the watchdog
# RQ job ids may not contain ":" (RQ 2.1); ComplyCube's ids are 24 hex digits.
_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


@dataclass(frozen=True, slots=True)
class EventRef:
    """What a job carries: identifiers, never the payload. Workers fetch the rest from the API."""

    event_id: str
    event_type: str
    resource_type: str  # workflowSession or check
    resource_id: str
    event_time: str


class Submitted(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


def job_id_for(event_id: str) -> str:
    """The RQ job id for an event id: readable when the id is safe, a digest otherwise."""
    if _SAFE_ID.fullmatch(event_id):
        return f"evt-{event_id}"
    return "evt-sha256-" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def seen_key(event_id: str) -> str:
    return SEEN_PREFIX + job_id_for(event_id)


def redis_client(settings: Settings) -> Redis:
    """The blocking Redis client every process uses, with bounded timeouts so an outage is
    noticed in seconds, not minutes."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=30,
    )


class EventQueue:
    """Submits events as RQ jobs. Blocking: the web side calls it from a worker thread."""

    def __init__(self, connection: Redis, settings: Settings) -> None:
        self.connection = connection
        self.queue = Queue(settings.queue_name, connection=connection)
        self.retention = settings.dedup_retention_seconds
        intervals = list(settings.job_retry_intervals)
        self.retry = Retry(max=len(intervals), interval=intervals) if intervals else None
        self.job_timeout = settings.job_timeout_seconds

    def submit(self, ref: EventRef) -> Submitted:
        """Queue ``ref`` once per event id. Raises QueueUnavailable when Redis cannot take it."""
        try:
            return self._submit(ref)
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _submit(self, ref: EventRef) -> Submitted:
        key = seen_key(ref.event_id)
        with self.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves watch() untyped
                    if pipe.exists(key):
                        pipe.unwatch()
                        # The event is safely queued already: failing to record the copy must not
                        # turn the answer into a 503. The web side's log line records it then.
                        with contextlib.suppress(QueueUnavailable):
                            self.record(ref, Submitted.DUPLICATE)
                        return Submitted.DUPLICATE
                    job = self.queue.create_job(
                        PROCESS_EVENT,
                        kwargs=asdict(ref),
                        job_id=job_id_for(ref.event_id),
                        description=f"event {ref.event_id} ({ref.event_type})",
                        timeout=self.job_timeout,
                        result_ttl=7 * DAY,
                        failure_ttl=self.retention,
                        retry=self.retry,
                    )
                    pipe.multi()
                    stamp = str(time.time())
                    pipe.set(key, stamp, ex=self.retention)
                    pipe.set(LAST_EVENT, stamp)
                    self.queue.enqueue_job(job, pipeline=pipe)
                    pipe.execute()
                    return Submitted.ACCEPTED
                except WatchError:
                    continue  # the same event id was written meanwhile: look again

    def record(self, ref: EventRef, disposition: str) -> None:
        """Queue an audit-trail record of an event that is not processed (a duplicate, an ignored
        type), so that every delivery received is on record. Raises QueueUnavailable."""
        try:
            self.queue.enqueue(
                RECORD_EVENT,
                kwargs={**asdict(ref), "disposition": str(disposition)},
                result_ttl=0,
                failure_ttl=self.retention,
                retry=self.retry,
            )
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
