"""Enqueue an event: the only code that knows how jobs are named, de-duplicated and retried.

Accepting an event is one Lua script, run atomically by Redis in one round trip: if the event's
"seen" key can be set (SET NX), the RQ job is written and queued; otherwise nothing is. So a
duplicate never makes a second job, even when both copies arrive at once, and a failed write
leaves nothing behind: the event is not marked seen and ComplyCube's retry succeeds later.

RQ stays the author of its job format: the job is built by RQ (``Queue.enqueue_job`` into a
redis-py pipeline that is never executed) and the script replays the commands RQ would have sent.
The web side runs the script on redis-py's asyncio client, so the event loop never blocks on Redis.

The seen key outlives the job on purpose: RQ deletes a finished job after its result TTL, and the
key is the only defence against a replayed delivery (ComplyCube's signature has no timestamp).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from dataclasses import asdict, dataclass
from enum import Enum, StrEnum

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError
from redis.typing import EncodableT
from rq import Queue, Retry
from rq.job import Job

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


def accepted_at(connection: Redis, event_id: str) -> int | None:
    """When the event was accepted (Redis clock, µs), or None when that is not known."""
    value = connection.get(seen_key(event_id))
    text = value.decode() if isinstance(value, bytes) else value
    return int(text) if text and text.isdigit() else None


def redis_client(settings: Settings) -> Redis:
    """The blocking Redis client every process uses, with bounded timeouts so an outage is
    noticed in seconds, not minutes."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=30,
    )


def async_redis_client(settings: Settings) -> AsyncRedis:
    """The web side's asyncio client, with the same timeouts."""
    return AsyncRedis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=30,
    )


# KEYS: the seen key, the last-event key. ARGV: retention seconds, the time, and RQ's commands in
# one string (see ``pack``): a few long arguments cost the client far less to send than forty
# short ones. Returns 1 when queued, 0 for a duplicate. (RQ's own keys travel in ARGV: fine on a
# standalone or Sentinel-managed Redis, not on a Redis Cluster.) The seen key holds when the event
# was accepted, by Redis's clock in microseconds: the clock the workers stamp their looks at a
# session with (see workers.state).
_ACCEPT = """
local t = redis.call('TIME')
local accepted_at = t[1] .. string.format('%06d', tonumber(t[2]))
if not redis.call('SET', KEYS[1], accepted_at, 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
local blob, pos = ARGV[3], 1
local function token()
  local colon = string.find(blob, ':', pos, true)
  local size = tonumber(string.sub(blob, pos, colon - 1))
  pos = colon + size + 1
  return string.sub(blob, colon + 1, colon + size)
end
while pos <= #blob do
  local count, args = tonumber(token()), {}
  for j = 1, count do args[j] = token() end
  redis.call(unpack(args))
end
return 1
"""


def pack(commands: list[tuple[object, ...]]) -> bytes:
    """Commands as one binary-safe string: for each, its argument count and then its arguments,
    every token written ``<length>:<bytes>``."""
    out = bytearray()
    for args in commands:
        for token in (len(args), *args):
            data = _encode(token)
            out += b"%d:%s" % (len(data), data)
    return bytes(out)


def _encode(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode()
    raise TypeError(f"cannot send {type(value).__name__} to Redis")


class EventQueue:
    """Submits events as RQ jobs, through the blocking client (``submit``, workers and tools) or
    the asyncio one (``submit_async``, the web side)."""

    def __init__(self, connection: Redis, settings: Settings, aconnection: AsyncRedis | None = None) -> None:
        self.connection = connection
        self.aconnection = aconnection
        self.queue = Queue(settings.queue_name, connection=connection)
        self.retention = settings.dedup_retention_seconds
        intervals = list(settings.job_retry_intervals)
        self.retry = Retry(max=len(intervals), interval=intervals) if intervals else None
        self.job_timeout = settings.job_timeout_seconds
        self._accept = connection.register_script(_ACCEPT)
        self._accept_async = aconnection.register_script(_ACCEPT) if aconnection is not None else None

    def _job(self, func: str, ref: EventRef, **extra: object) -> Job:
        duplicate_or_ignored = func == RECORD_EVENT
        return self.queue.create_job(
            func,
            kwargs={**asdict(ref), **extra},
            job_id=None if duplicate_or_ignored else job_id_for(ref.event_id),
            description=f"event {ref.event_id} ({ref.event_type})",
            timeout=self.job_timeout,
            result_ttl=0 if duplicate_or_ignored else 7 * DAY,
            failure_ttl=self.retention,
            retry=self.retry,
        )

    def _commands(self, job: Job) -> list[tuple[object, ...]]:
        """The commands RQ sends to queue ``job``."""
        pipe = self.connection.pipeline()
        try:
            self.queue.enqueue_job(job, pipeline=pipe)
            return [tuple(args) for args, _options in pipe.command_stack]
        finally:
            pipe.reset()

    def _accept_args(self, ref: EventRef) -> tuple[list[str], list[EncodableT]]:
        blob = pack(self._commands(self._job(PROCESS_EVENT, ref)))
        return [seen_key(ref.event_id), LAST_EVENT], [self.retention, repr(time.time()), blob]

    def submit(self, ref: EventRef) -> Submitted:
        """Queue ``ref`` once per event id. Raises QueueUnavailable when Redis cannot take it."""
        try:
            self._know_server_version()
            keys, args = self._accept_args(ref)
            accepted = self._accept(keys=keys, args=args)
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if accepted:
            return Submitted.ACCEPTED
        # Safely queued already: failing to record the copy must not turn the answer into a 503.
        with contextlib.suppress(QueueUnavailable):
            self.record(ref, Submitted.DUPLICATE)
        return Submitted.DUPLICATE

    async def submit_async(self, ref: EventRef) -> Submitted:
        """``submit`` on the asyncio client, in one round trip."""
        assert self._accept_async is not None, "built without an asyncio client"
        try:
            await self._know_server_version_async()
            keys, args = self._accept_args(ref)
            accepted = await self._accept_async(keys=keys, args=args)
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if accepted:
            return Submitted.ACCEPTED
        with contextlib.suppress(QueueUnavailable):
            await self.record_async(ref, Submitted.DUPLICATE)
        return Submitted.DUPLICATE

    def record(self, ref: EventRef, disposition: str) -> None:
        """Queue an audit-trail record of an event that is not processed (a duplicate, an ignored
        type), so that every delivery received is on record. Raises QueueUnavailable."""
        try:
            self._know_server_version()
            self.queue.enqueue_job(self._job(RECORD_EVENT, ref, disposition=str(disposition)))
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def record_async(self, ref: EventRef, disposition: str) -> None:
        assert self.aconnection is not None
        try:
            await self._know_server_version_async()
            commands = self._commands(self._job(RECORD_EVENT, ref, disposition=str(disposition)))
            async with self.aconnection.pipeline(transaction=True) as pipe:
                for args in commands:
                    pipe.execute_command(*args)
                await pipe.execute()
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

    # RQ stamps each job with the server's version, read once (INFO); read it the same way here.
    def _know_server_version(self) -> None:
        if self.queue.redis_server_version is None:
            self.queue.get_redis_server_version()

    async def _know_server_version_async(self) -> None:
        if self.queue.redis_server_version is None:
            assert self.aconnection is not None
            info = await self.aconnection.info("server")
            self.queue.redis_server_version = tuple(
                int(part) for part in str(info["redis_version"]).split(".")[:3]
            )  # type: ignore[assignment]
