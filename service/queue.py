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
import itertools
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum, StrEnum
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError
from redis.typing import EncodableT
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat

from service.batching import ScriptBatcher
from service.errors import ForeignJob, QueueUnavailable
from service.log import get_logger
from service.settings import Settings

log = get_logger("cubehook.queue")
# The job functions, named by path so the web process never imports the workers; the only names a
# job may call (CubehookJob).
PROCESS_EVENT = "workers.jobs.process_event"
RECORD_EVENT = "workers.jobs.record_event"
PROCESS_SESSION = "workers.jobs.process_session"
RUN_ACTION = "workers.jobs.run_action"
MAINTENANCE = "workers.jobs.maintenance"
JOB_FUNCTIONS = frozenset({PROCESS_EVENT, RECORD_EVENT, PROCESS_SESSION, RUN_ACTION, MAINTENANCE})
SEEN_PREFIX = "cubehook:seen:"
COPIES_PREFIX = "cubehook:copies:"  # + job id: copies of one event in the replay window
COPIES_BY_TYPE = "cubehook:copies_by_type"  # HASH: event type -> copies in the replay window
MAX_COPY_TYPES = 100  # event types counted by name in COPIES_BY_TYPE; the others as OTHER_TYPES
OTHER_TYPES = "(other)"
LAST_EVENT = "cubehook:last_event_at"  # when the last event was accepted: metrics, the watchdog
# What RQ 3 accepts in a job id (rq.job.JOB_ID_PATTERN): letters, digits, "_" and "-"; no ":", no ".".
_RQ_ID = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class EventRef:
    """What a job carries: identifiers, never the payload. Workers fetch the rest from the API."""

    event_id: str
    event_type: str
    resource_type: str  # a service.events.Resource value: session, check, or other (records only)
    resource_id: str
    event_time: str


class Submitted(StrEnum):
    ACCEPTED = "accepted"  # queued for processing
    DUPLICATE = "duplicate"  # seen before: counted, put on record once per replay window
    IGNORED = "ignored"  # a type cubehook does not act on, seen for the first time: put on record


def rq_id_safe(text: str, max_length: int) -> bool:
    """``text`` may stand in an RQ job id as it is: RQ accepts its characters, and it is short."""
    return len(text) <= max_length and _RQ_ID.fullmatch(text) is not None


def job_id_part(text: str, digest_chars: int) -> str:
    """``text`` as a part of a job id (a session id, an action name): as it is when RQ accepts it
    and it has at most 64 characters, else the first ``digest_chars`` hex digits of its SHA-256."""
    return text if rq_id_safe(text, 64) else hashlib.sha256(text.encode()).hexdigest()[:digest_chars]


def job_id_for(event_id: str) -> str:
    """The RQ job id for an event id: readable when the id is safe (ComplyCube's are 24 hex digits),
    a digest otherwise."""
    if rq_id_safe(event_id, 128):
        return f"evt-{event_id}"
    return "evt-sha256-" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def seen_key(event_id: str) -> str:
    return _seen_key_of_job(job_id_for(event_id))


def _seen_key_of_job(job_id: str) -> str:
    return SEEN_PREFIX + job_id


def accepted_at(connection: Redis, event_id: str) -> int | None:
    """When the event was accepted (Redis clock, µs), or None when that is not known."""
    value = connection.get(seen_key(event_id))
    text = value.decode() if isinstance(value, bytes) else value
    return int(text) if text and text.isdigit() else None


class CubehookJob(Job):
    """RQ's job, limited to what cubehook queues: Redis is not a code-execution boundary.

    Jobs are stored as JSON (RQ's JSONSerializer), so their data carries strings and numbers, never
    pickled objects; and a job runs only one of cubehook's job functions (JOB_FUNCTIONS), with no
    instance and no callbacks. Anyone able to write to Redis could otherwise make a worker, which
    holds the API key and the database's credentials, import and call any function.
    """

    @property
    def func(self) -> Callable[..., Any] | None:
        if self.func_name not in JOB_FUNCTIONS or self.instance is not None:
            raise ForeignJob(f"job {self.id} names {self.func_name!r}, not one of cubehook's job functions")
        # Refused before the job runs, not only when RQ reaches for the callback after it.
        self._no_callback("success", self._success_callback_name)
        self._no_callback("failure", self._failure_callback_name)
        self._no_callback("stopped", self._stopped_callback_name)
        func: Callable[..., Any] | None = super().func
        return func

    @property
    def success_callback(self) -> None:
        return self._no_callback("success", self._success_callback_name)

    @property
    def failure_callback(self) -> None:
        return self._no_callback("failure", self._failure_callback_name)

    @property
    def stopped_callback(self) -> None:
        return self._no_callback("stopped", self._stopped_callback_name)

    def _no_callback(self, kind: str, name: str | None) -> None:
        if name:
            raise ForeignJob(f"job {self.id} names a {kind} callback, {name!r}; cubehook sets none")


# What every queue, worker and job fetch of cubehook's is built with.
JOB_OPTIONS: dict[str, Any] = {"serializer": JSONSerializer, "job_class": CubehookJob}


def rq_queue(name: str, connection: Redis) -> Queue:
    """The cubehook queue, as cubehook's processes and commands must all see it (JOB_OPTIONS)."""
    return Queue(name, connection=connection, **JOB_OPTIONS)


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


# Sets ``now``: Redis's clock (TIME) in microseconds, as a string of digits. The one clock the web
# side and the workers share: the workers compare these stamps (workers.state).
REDIS_NOW_US = "local t = redis.call('TIME') local now = t[1] .. string.format('%06d', tonumber(t[2]))\n"
# The scripts below share their KEYS and first ARGV:
#   KEYS[1] the seen key, KEYS[2] the last-event key, KEYS[3] this event's copies counter,
#   KEYS[4] the hash of copies by event type;
#   ARGV[1] the seen key's retention (s), ARGV[2] the time (s, for the last-event key), ARGV[3] the
#   replay window (s), ARGV[4] the event type, ARGV[5] how many types are counted by name,
#   ARGV[6] the name the others are counted under; then what the job needs (the accept scripts).
# The seen key holds when the event was first seen, by Redis's clock in microseconds: the clock the
# workers stamp their looks at a session with (see workers.state). A copy of an event seen before
# (a ComplyCube retry, a replayed capture) costs no job: it is counted, per event and per type, for
# the replay window; ``copy()`` answers 0 for the first copy in the window (the caller puts it on
# the audit trail) and -1 for the others. (RQ's own keys travel in ARGV: fine on a standalone or
# Sentinel-managed Redis, not on a Redis Cluster.)
_COPY = """
local function copy()
  local name = ARGV[4]
  if redis.call('HEXISTS', KEYS[4], name) == 0 and redis.call('HLEN', KEYS[4]) >= tonumber(ARGV[5]) then
    name = ARGV[6]
  end
  redis.call('HINCRBY', KEYS[4], name, 1)
  redis.call('EXPIRE', KEYS[4], ARGV[3])
  if redis.call('INCR', KEYS[3]) == 1 then
    redis.call('EXPIRE', KEYS[3], ARGV[3])
    return 0
  end
  return -1
end
"""
# Accepting an event: 1 when its job was queued; else copy().
_ACCEPT_HEAD = (
    REDIS_NOW_US
    + _COPY
    + """
if not redis.call('SET', KEYS[1], now, 'NX', 'EX', ARGV[1]) then return copy() end
redis.call('SET', KEYS[2], ARGV[2])
"""
)
# Seeing an event cubehook does not act on: 1 the first time (the caller puts it on record); else copy().
_SEE_IGNORED = (
    REDIS_NOW_US
    + _COPY
    + """
if redis.call('SET', KEYS[1], now, 'NX', 'EX', ARGV[1]) then return 1 end
return copy()
"""
)
_FIXED_ARGS = 6  # the job's values start at ARGV[7]
# The general form: RQ's commands in one string, ARGV[7] (see ``pack``). A few long arguments cost
# the client far less to send than forty short ones. Used when there is no JobTemplate.
_ACCEPT = (
    _ACCEPT_HEAD
    + """
local blob, pos = ARGV[7], 1
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
)


def pack(commands: list[tuple[object, ...]]) -> bytes:
    """Commands as one binary-safe string: for each, its argument count and then its arguments,
    every token written ``<length>:<bytes>``."""
    out = bytearray()
    for args in commands:
        for token in (len(args), *args):
            out += _packed(token)
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


_UNRECORDED = object()


# A token of a recorded command: a constant, or (kind, text) to fill in per event, where kind is
# "time", "data" (the serialised call) or "text" (holding stand-ins for the job id and the fields).
Token = bytes | tuple[str, str | None]


class JobTemplate:
    """RQ's commands to queue a ``process_event`` job, recorded once from RQ itself with stand-in
    values, turned into a Lua script that holds their constant parts; per event, only the parts
    that vary are sent: the job id (in keys), the event's fields (in the description), the
    serialised call (``data``, by RQ's serializer) and the timestamps. RQ compresses ``data`` with
    zlib and reads it uncompressed as well (``Job.restore`` falls back to the raw bytes); setting up
    a deflate stream for 160 bytes costs 15-50 µs, so the template leaves it uncompressed.

    Building the job with RQ per request cost about 60 µs of the web process's CPU, and parsing
    the commands out of one string about 20 µs of Redis's; this costs a few µs of each. The script
    runs the commands RQ would have sent (but for that compression): that is checked when the
    template is recorded, and the template is not used (RQ builds every job, as before) when the
    check fails, say after an RQ upgrade that changed its commands.
    """

    _STAND_INS = (
        "cubehook-template-job-id",
        *(f"\x00cubehook-template-{name}\x00" for name in EventRef.__slots__),
    )
    _STAND_IN = re.compile("|".join(re.escape(s) for s in _STAND_INS))

    def __init__(self, commands: list[list[Token]], dumps: Callable[[object], bytes]) -> None:
        self.commands = commands
        self.dumps = dumps
        self.variables = [token for command in commands for token in command if not isinstance(token, bytes)]
        argv = itertools.count(_FIXED_ARGS + 1)
        calls = [
            "redis.call("
            + ", ".join(_lua_string(t) if isinstance(t, bytes) else f"ARGV[{next(argv)}]" for t in command)
            + ")\n"
            for command in commands
        ]
        self.script = _ACCEPT_HEAD + "".join(calls) + "return 1\n"

    @classmethod
    def record(cls, intake: EventQueue) -> JobTemplate | None:
        """The template, or None when it does not reproduce RQ's own commands."""
        job_id, *fields = cls._STAND_INS
        job = intake._job(PROCESS_EVENT, EventRef(*fields), job_id)
        commands: list[list[Token]] = []
        for command in rq_commands(intake, job, _MOMENT):
            tokens: list[Token] = []
            for token in command:
                if token == _MOMENT.encode():
                    tokens.append(("time", None))
                elif token == job.data:
                    tokens.append(("data", None))
                elif any(s.encode() in token for s in cls._STAND_INS):
                    tokens.append(("text", token.decode()))
                else:
                    tokens.append(token)
            commands.append(tokens)
        template = cls(commands, intake.queue.serializer.dumps)
        # The check: one event queued through RQ and through the template, at the same moment.
        probe = EventRef("evt-template-check", "workflow.session.completed", "session", "s", "t")
        expected = intake._job(PROCESS_EVENT, probe)
        moment = utcformat(expected.created_at)
        by_template = template.expand(template.values(probe, job_id_for(probe.event_id), moment))
        return template if by_template == rq_commands(intake, expected, moment) else None

    def values(self, ref: EventRef, job_id: str, moment: str) -> list[bytes]:
        """The script's arguments after the first two: the varying parts, in order."""
        fields = (ref.event_id, ref.event_type, ref.resource_type, ref.resource_id, ref.event_time)
        found = dict(zip(self._STAND_INS, (job_id, *fields), strict=True))
        call = (PROCESS_EVENT, None, (), dict(zip(EventRef.__slots__, fields, strict=True)))
        filled = {"time": moment.encode(), "data": self.dumps(call)}
        return [
            filled[kind]
            if text is None
            # one pass, so that a value holding a stand-in's text is never replaced again
            else self._STAND_IN.sub(lambda match: found[match[0]], text).encode()
            for kind, text in self.variables
        ]

    def expand(self, values: list[bytes]) -> list[tuple[bytes, ...]]:
        """The commands the script runs with these values."""
        supply = iter(values)
        return [
            tuple(t if isinstance(t, bytes) else next(supply) for t in command) for command in self.commands
        ]


def _lua_string(data: bytes) -> str:
    """A Lua string literal for any bytes: printable ASCII as it is, every other byte as \\ddd."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in data) + '"'


_MOMENT = "\x00cubehook-template-moment\x00"
_TIMESTAMPS = ("created_at", "enqueued_at")


def rq_commands(intake: EventQueue, job: Job, moment: str) -> list[tuple[bytes, ...]]:
    """The commands RQ sends to queue ``job``, as bytes, with the job's timestamps set to ``moment``
    and its serialised call left uncompressed: the form the template sends."""
    compressed = zlib.compress(job.data)
    return [
        tuple(
            moment.encode() if i > 0 and command[i - 1] in _TIMESTAMPS
            else job.data if token == compressed
            else _encode(token)
            for i, token in enumerate(command)
        )
        for command in intake._commands(job)
    ]  # fmt: skip


def _packed(token: object) -> bytes:
    data = _encode(token)
    return b"%d:%s" % (len(data), data)


class EventQueue:
    """Submits events as RQ jobs, through the blocking client (``submit``, workers and tools) or
    the asyncio one (``submit_async``, the web side)."""

    def __init__(self, connection: Redis, settings: Settings, aconnection: AsyncRedis | None = None) -> None:
        self.connection = connection
        self.aconnection = aconnection
        self.queue = rq_queue(settings.queue_name, connection)
        self.retention = settings.dedup_retention_seconds
        self.replay_window = settings.replay_window_seconds
        intervals = list(settings.job_retry_intervals)
        self.retry = Retry(max=len(intervals), interval=intervals) if intervals else None
        self.job_timeout = settings.job_timeout_seconds
        self.result_ttl = settings.result_ttl_seconds
        self._template: JobTemplate | object | None = _UNRECORDED  # once RQ knows the server version
        self._accept = connection.register_script(_ACCEPT)
        self._accept_async = ScriptBatcher(aconnection, _ACCEPT) if aconnection is not None else None
        self._see_ignored = aconnection.register_script(_SEE_IGNORED) if aconnection is not None else None

    def _head(self, ref: EventRef, job_id: str) -> tuple[list[str], list[EncodableT]]:
        """The KEYS and the first ARGV of the scripts (see _COPY)."""
        keys = [_seen_key_of_job(job_id), LAST_EVENT, COPIES_PREFIX + job_id, COPIES_BY_TYPE]
        args: list[EncodableT] = [
            self.retention, repr(time.time()), self.replay_window, ref.event_type[:256], MAX_COPY_TYPES,
            OTHER_TYPES,
        ]  # fmt: skip
        return keys, args

    def _job(self, func: str, ref: EventRef, job_id: str | None = None, **extra: object) -> Job:
        duplicate_or_ignored = func == RECORD_EVENT
        return self.queue.create_job(
            func,
            kwargs={**asdict(ref), **extra},
            job_id=None if duplicate_or_ignored else job_id or job_id_for(ref.event_id),
            description=f"event {ref.event_id} ({ref.event_type})",
            timeout=self.job_timeout,
            result_ttl=0 if duplicate_or_ignored else self.result_ttl,
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
        if self._template is _UNRECORDED:
            self._use(JobTemplate.record(self))
        job_id = job_id_for(ref.event_id)
        keys, head = self._head(ref, job_id)
        if isinstance(self._template, JobTemplate):
            return keys, [*head, *self._template.values(ref, job_id, utcformat(now()))]
        return keys, [*head, pack(self._commands(self._job(PROCESS_EVENT, ref)))]

    def _use(self, template: JobTemplate | None) -> None:
        self._template = template
        if template is None:
            log.warning("queue.template_unused", reason="RQ's commands differ from the template")
            return
        self._accept = self.connection.register_script(template.script)
        if self.aconnection is not None:
            self._accept_async = ScriptBatcher(self.aconnection, template.script)

    def submit(self, ref: EventRef) -> Submitted:
        """Queue ``ref`` once per event id. Raises QueueUnavailable when Redis cannot take it."""
        try:
            self._know_server_version()
            keys, args = self._accept_args(ref)
            answer = int(self._accept(keys=keys, args=args))
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if answer == 1:
            return Submitted.ACCEPTED
        if answer == 0:  # the first copy in the replay window: on record, once
            # Safely queued already: failing to record the copy must not turn the answer into a 503.
            with contextlib.suppress(QueueUnavailable):
                self.record(ref, Submitted.DUPLICATE)
        return Submitted.DUPLICATE

    async def submit_async(self, ref: EventRef) -> Submitted:
        """``submit`` on the asyncio client, in one round trip shared with the calls made meanwhile
        (a second one for the first copy of an event in the replay window, to put it on record)."""
        assert self._accept_async is not None, "built without an asyncio client"
        try:
            if self.queue.redis_server_version is None:
                await self._know_server_version_async()
            keys, args = self._accept_args(ref)
            answer = int(await self._accept_async.call(keys, args))
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if answer == 1:
            return Submitted.ACCEPTED
        if answer == 0:
            with contextlib.suppress(QueueUnavailable):
                await self.record_async(ref, Submitted.DUPLICATE)
        return Submitted.DUPLICATE

    async def see_ignored_async(self, ref: EventRef) -> Submitted:
        """An event of a type cubehook does not act on: IGNORED the first time, DUPLICATE after,
        put on record the first time and for the first copy in the replay window, never a job per
        delivery. Raises QueueUnavailable."""
        assert self._see_ignored is not None, "built without an asyncio client"
        keys, args = self._head(ref, job_id_for(ref.event_id))
        try:
            answer = int(await self._see_ignored(keys=keys, args=args))
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
        seen = Submitted.IGNORED if answer == 1 else Submitted.DUPLICATE
        if answer >= 0:
            await self.record_async(ref, seen)
        return seen

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
