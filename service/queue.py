"""Enqueue an event: the seen key and the RQ job, written together or not at all.

Accepting an event is one Lua script, run atomically by Redis in one round trip: if the event's
"seen" key can be set (SET NX), the RQ job is written and queued; otherwise the copy is counted
(service.scripts). So a duplicate never makes a second job, even when both copies arrive at once,
and a failed write leaves nothing behind: the event is not marked seen and ComplyCube's retry
succeeds later.

RQ stays the author of its job format: the script replays the commands RQ itself would send
(service.job_template, recorded and checked against RQ at the first event). When the check fails
(an RQ upgrade), every event is queued by RQ's own ``Queue.enqueue_job`` instead, in a transaction
that the seen key guards (WATCH): slower, as safe. The web side runs all this on redis-py's asyncio
client, so the event loop never blocks on Redis.

On the web side an event is answered 2xx only once enough replicas hold it: the accept script, or
the transaction, is followed by WAIT on the same connection (service.redis.ReplicaWait).

The seen key outlives the job on purpose: RQ deletes a finished job after its result TTL, and the
key is the only defence against a replayed delivery (ComplyCube's signature has no timestamp).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict
from enum import StrEnum

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError, WatchError
from redis.typing import EncodableT
from rq import Retry
from rq.job import Job
from rq.utils import now, utcformat

from service import keys, scripts
from service.batching import ScriptBatcher
from service.errors import QueueUnavailable
from service.evalsha import ScriptsMissing, async_script, script, sha1
from service.job_template import JobTemplate
from service.log import get_logger
from service.redis import ReplicaWait, exchange
from service.rq_jobs import (
    EventRef,
    JobFunction,
    enqueue_commands,
    job_id_for,
    know_server_version,
    rq_queue,
)
from service.settings import Settings

log = get_logger("cubehook.queue")
MAX_COPY_TYPES = 100  # event types counted by name in keys.COPIES_BY_TYPE; the others as OTHER_TYPES
OTHER_TYPES = "(other)"
CLAIM_SEEN_SHA = sha1(scripts.CLAIM_SEEN)
_UNRECORDED = object()


class Submitted(StrEnum):
    ACCEPTED = "accepted"  # queued for processing
    DUPLICATE = "duplicate"  # seen before: counted, put on record once per replay window
    IGNORED = "ignored"  # a type cubehook does not act on, seen for the first time: put on record


def seen_key(event_id: str) -> str:
    return keys.SEEN + job_id_for(event_id)


def accepted_at(connection: Redis, event_id: str) -> int | None:
    """When the event was accepted (Redis clock, µs), or None when that is not known."""
    value = connection.get(seen_key(event_id))
    text = value.decode() if isinstance(value, bytes) else value
    return int(text) if text and text.isdigit() else None


class EventQueue:
    """Submits events as RQ jobs, through the blocking client (``submit``, workers and tools) or
    the asyncio one (``submit_async``, the web side)."""

    def __init__(
        self,
        connection: Redis,
        settings: Settings,
        aconnection: AsyncRedis | None = None,
        *,
        loads_scripts: bool = True,
    ) -> None:
        self.connection = connection
        # False for the web process: its scripts are run by SHA only, loaded by the workers
        # (service.evalsha).
        self.loads_scripts = loads_scripts
        self.aconnection = aconnection
        self.queue = rq_queue(settings.queue_name, connection)
        self.retention = settings.dedup_retention_seconds
        self.replay_window = settings.replay_window_seconds
        intervals = list(settings.job_retry_intervals)
        self.retry = Retry(max=len(intervals), interval=intervals) if intervals else None
        self.job_timeout = settings.job_timeout_seconds
        self.result_ttl = settings.result_ttl_seconds
        self.template: JobTemplate | None = None
        self._recorded = False  # once RQ knows the server's version (it stamps jobs with it)
        self._claim = script(connection, scripts.CLAIM_SEEN, loads_scripts)
        self._see_ignored = (
            async_script(aconnection, scripts.SEE_IGNORED, loads_scripts) if aconnection else None
        )
        self.replicas = ReplicaWait.of(aconnection, settings) if aconnection else None
        self._accept: object = None
        self._accept_async: ScriptBatcher | None = None

    def _head(self, ref: EventRef, job_id: str) -> tuple[list[str], list[EncodableT]]:
        """The KEYS and the first ARGV of the scripts (service.scripts: accepting events)."""
        names = [keys.SEEN + job_id, keys.LAST_EVENT, keys.COPIES + job_id, keys.COPIES_BY_TYPE]
        args: list[EncodableT] = [
            self.retention, repr(time.time()), self.replay_window, ref.event_type[:256], MAX_COPY_TYPES,
            OTHER_TYPES,
        ]  # fmt: skip
        return names, args

    def _job(self, ref: EventRef, job_id: str | None = None, **record: str) -> Job:
        """The event's job (``process_event``), or with ``record``, a record of it (``record_event``:
        a duplicate, an ignored type; no id of its own, no result kept)."""
        return self.queue.create_job(
            JobFunction.RECORD_EVENT if record else JobFunction.PROCESS_EVENT,
            kwargs={**asdict(ref), **record},
            job_id=None if record else job_id or job_id_for(ref.event_id),
            description=f"event {ref.event_id} ({ref.event_type})",
            timeout=self.job_timeout,
            result_ttl=0 if record else self.result_ttl,
            failure_ttl=self.retention,
            retry=self.retry,
        )

    def _ready(self) -> JobTemplate | None:
        """The job template, recorded at the first event (once RQ knows the server's version)."""
        if not self._recorded:
            self._recorded = True
            self.template = JobTemplate.record(self.queue, self._job)
            if self.template is None:
                log.warning("queue.template_unused", reason="RQ's commands differ from the template")
            else:
                self._accept = script(self.connection, self.template.script, self.loads_scripts)
                if self.aconnection is not None:
                    self._accept_async = ScriptBatcher(
                        self.aconnection, self.template.script, self.replicas, loads=self.loads_scripts
                    )
        return self.template

    def accept_script(self) -> str | None:
        """The Lua of the template's script (None: RQ's commands differ, every event goes the slow
        way). Raises RedisError (RQ reads the server's version)."""
        know_server_version(self.queue)
        template = self._ready()
        return template.script if template is not None else None

    def _accept_args(self, ref: EventRef, template: JobTemplate) -> tuple[list[str], list[EncodableT]]:
        job_id = job_id_for(ref.event_id)
        names, head = self._head(ref, job_id)
        return names, [*head, *template.values(ref, job_id, utcformat(now()))]

    def submit(self, ref: EventRef) -> Submitted:
        """Queue ``ref`` once per event id. Raises QueueUnavailable when Redis cannot take it."""
        try:
            know_server_version(self.queue)
            template = self._ready()
            if template is None:
                answer = self._submit_by_rq(ref)
            else:
                names, args = self._accept_args(ref, template)
                answer = int(self._accept(keys=names, args=args))  # type: ignore[operator]
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
        assert self.aconnection is not None, "built without an asyncio client"
        try:
            if not self._recorded:
                know_server_version(self.queue, str((await self.aconnection.info("server"))["redis_version"]))
            template = self._ready()
            if template is None:
                answer = await self._submit_by_rq_async(ref)
            else:
                assert self._accept_async is not None
                answer = int(await self._accept_async.call(*self._accept_args(ref, template)))
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if answer == 1:
            return Submitted.ACCEPTED
        if answer == 0:
            with contextlib.suppress(QueueUnavailable):
                await self.record_async(ref, Submitted.DUPLICATE)
        return Submitted.DUPLICATE

    # --- without a template: RQ's own enqueue_job, in a transaction the seen key guards ----------

    def _submit_by_rq(self, ref: EventRef) -> int:
        """1 when queued; else what scripts.COPY answers. Raises RedisError."""
        names, args = self._head(ref, job_id_for(ref.event_id))
        commands = enqueue_commands(self.queue, self._job(ref))
        with self.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(names[0])  # type: ignore[no-untyped-call]
                    if pipe.exists(names[0]):
                        pipe.reset()
                        return int(self._claim(keys=names, args=args))  # a copy: counted
                    # Loaded before the transaction: a script missing inside it would fail alone,
                    # and the job be queued without its seen key.
                    if not pipe.script_exists(CLAIM_SEEN_SHA)[0]:
                        if not self.loads_scripts:
                            raise ScriptsMissing(CLAIM_SEEN_SHA)
                        self.connection.script_load(scripts.CLAIM_SEEN)
                    pipe.multi()
                    pipe.evalsha(CLAIM_SEEN_SHA, len(names), *names, *args)
                    for command in commands:
                        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
                    pipe.execute()
                    return 1
                except WatchError:
                    continue  # a copy claimed it meanwhile: count this one as a copy

    async def _submit_by_rq_async(self, ref: EventRef) -> int:
        """``_submit_by_rq``, then WAIT. On the connection the WATCH holds, written out (redis-py's
        pipeline gives its connection back after EXEC, and WAIT must follow the writes on theirs)."""
        assert self.aconnection is not None
        assert self.replicas is not None
        names, args = self._head(ref, job_id_for(ref.event_id))
        commands = enqueue_commands(self.queue, self._job(ref))
        claim: tuple[EncodableT, ...] = ("EVALSHA", CLAIM_SEEN_SHA, len(names), *names, *args)
        if not (await self.aconnection.script_exists(CLAIM_SEEN_SHA))[0]:  # as in _submit_by_rq
            if not self.loads_scripts:
                raise ScriptsMissing(CLAIM_SEEN_SHA)
            await self.aconnection.script_load(scripts.CLAIM_SEEN)
        async with self.aconnection.pipeline() as pipe:
            while True:
                needed = await self.replicas.needed()
                wait = [("WAIT", needed, self.replicas.timeout_ms)] if needed else []
                await pipe.watch(names[0])
                assert pipe.connection is not None  # WATCH took one
                if await pipe.exists(names[0]):  # a copy: counted
                    answer, *waited = await exchange(pipe.connection, [claim, *wait])
                else:
                    transaction = [("MULTI",), claim, *commands, ("EXEC",)]
                    replies = await exchange(pipe.connection, [*transaction, *wait])
                    answer, *waited = replies[len(commands) + 2 :]  # EXEC's reply (nil: WATCH saw a copy)
                    if answer is None:
                        continue  # a copy claimed it meanwhile: count this one as a copy
                    answer = _first_error(answer) or 1
                if waited and (failed := self.replicas.shortfall(waited[0], needed)) is not None:
                    raise failed
                if isinstance(answer, BaseException):
                    raise answer
                return int(answer)

    # --- what is not processed: put on record ----------------------------------------------------

    async def see_ignored_async(self, ref: EventRef) -> Submitted:
        """An event of a type cubehook does not act on: IGNORED the first time, DUPLICATE after,
        put on record the first time and for the first copy in the replay window, never a job per
        delivery. Raises QueueUnavailable."""
        assert self._see_ignored is not None, "built without an asyncio client"
        names, args = self._head(ref, job_id_for(ref.event_id))
        try:
            answer = int(await self._see_ignored(keys=names, args=args))
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
            know_server_version(self.queue)
            self.queue.enqueue_job(self._job(ref, disposition=str(disposition)))
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def record_async(self, ref: EventRef, disposition: str) -> None:
        assert self.aconnection is not None
        try:
            if self.queue.redis_server_version is None:
                know_server_version(self.queue, str((await self.aconnection.info("server"))["redis_version"]))
            commands = enqueue_commands(self.queue, self._job(ref, disposition=str(disposition)))
            async with self.aconnection.pipeline(transaction=True) as pipe:
                for args in commands:
                    pipe.execute_command(*args)
                await pipe.execute()
        except RedisError as exc:
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _first_error(exec_reply: object) -> BaseException | None:
    """EXEC's own error, or the first among its results, as redis-py's pipeline would raise it."""
    if isinstance(exec_reply, BaseException):
        return exec_reply
    errors = [r for r in exec_reply if isinstance(r, BaseException)] if isinstance(exec_reply, list) else []
    return errors[0] if errors else None
