"""The intake: what becomes of a delivery's bytes, whoever brings them (the HTTP endpoint, or
``cubehook quarantine replay``). Transport-free: the body and the signature header in, a Receipt
out, through a fixed sequence of guards:

1. signature missing or wrong    SignatureError   (the endpoint: 401; a replay: the item stays)
2. cannot be read                UNREADABLE       (the endpoint: kept in the quarantine, 202;
                                                   a replay: the item stays, the attempt noted
                                                   beside the reason it was kept for)
3. not about a session or check  IGNORED          recorded, counted by type
4. event id already accepted     DUPLICATE
5. queued                        ACCEPTED
Redis failing raises QueueUnavailable: nothing was kept, the sender must retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple, TypeVar

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError
from structlog.typing import FilteringBoundLogger

from service.errors import QueueUnavailable, SignatureError
from service.events import Event, Resource, Unreadable, read_event, summary
from service.log import get_logger
from service.metrics import ENQUEUE_SECONDS, QUARANTINE_EVICTED, QUARANTINED, count_ignored
from service.quarantine import IgnoredTypes, Quarantine
from service.queue import EventQueue, Submitted
from service.redis import async_redis_client, redis_client
from service.rq_jobs import EventRef
from service.settings import Settings
from service.signature import verify

log = get_logger("cubehook.intake")
T = TypeVar("T")


class Status(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    UNREADABLE = "unreadable"
    QUARANTINED = "quarantined"


class Receipt(NamedTuple):  # one per request: a NamedTuple is the cheapest immutable record
    status: Status
    event: Event | None = None  # when it was read
    unreadable: Unreadable | None = None  # when it was not
    quarantine_id: str | None = None  # when it was kept


@dataclass(frozen=True, slots=True)
class Replayed:
    item_id: str
    result: str  # accepted | duplicate | ignored (the item is gone) | kept | missing
    reason: str = ""  # why it was kept


@dataclass(frozen=True, slots=True)
class Intake:
    """What the intake needs, built once per process (``build``)."""

    secrets: tuple[bytes, ...]
    max_body_bytes: int
    body_timeout_seconds: float
    queue: EventQueue
    quarantine: Quarantine
    ignored: IgnoredTypes

    @classmethod
    def build(
        cls, settings: Settings, redis: Redis, aredis: AsyncRedis, *, loads_scripts: bool = True
    ) -> Intake:
        """Raises ConfigError when no webhook secret is configured. ``loads_scripts`` False: the
        web process, whose Redis user only runs the scripts the workers loaded (service.evalsha)."""
        return cls(
            secrets=settings.secret_keys(),  # no secret, no intake: there is no skip-verification mode
            max_body_bytes=settings.max_body_bytes,
            body_timeout_seconds=settings.body_timeout_seconds,
            queue=EventQueue(redis, settings, aredis, loads_scripts=loads_scripts),
            quarantine=Quarantine(
                aredis,
                settings.quarantine_max_items,
                settings.quarantine_max_bytes,
                settings.quarantine_retention_seconds,
                loads_scripts=loads_scripts,
            ),
            ignored=IgnoredTypes(aredis, loads_scripts=loads_scripts),
        )

    async def take(self, body: bytes, signature: str | None) -> Receipt:
        """Guards 1-5. Raises SignatureError and QueueUnavailable."""
        verify(body, signature, self.secrets)
        event = read_event(body)
        if isinstance(event, Unreadable):
            return Receipt(Status.UNREADABLE, unreadable=event)
        bound = log.bind(**summary(event))
        ref = EventRef(event.id, event.type, event.resource.value, event.resource_id, event.created_at)
        if event.resource is Resource.OTHER:
            return Receipt(await self._ignore(ref, bound), event)
        started = time.perf_counter()
        try:
            submitted = await self.queue.submit_async(ref)  # one round trip, on the asyncio client
        except QueueUnavailable as exc:
            # Expected while Redis is away, and retried by ComplyCube: a warning, not an error.
            bound.warning("webhook.queue_unavailable", error=str(exc), answer=503)
            raise
        ENQUEUE_SECONDS.observe(time.perf_counter() - started)
        if submitted is Submitted.DUPLICATE:
            bound.info("webhook.duplicate")
            return Receipt(Status.DUPLICATE, event)
        bound.info("webhook.accepted")
        return Receipt(Status.ACCEPTED, event)

    async def receive(self, body: bytes, signature: str | None) -> Receipt:
        """What the endpoint does: ``take``, keeping in the quarantine a body that cannot be read.
        Raises SignatureError and QueueUnavailable (then nothing was kept)."""
        outcome = await self.take(body, signature)
        if outcome.unreadable is None:
            return outcome
        assert signature is not None  # it verified
        flaw = outcome.unreadable
        try:
            kept = await self.quarantine.keep(body, signature, flaw)
        except QueueUnavailable as exc:
            log.error("webhook.quarantine_unavailable", error=str(exc), reason=flaw.flaw.value)  # noqa: TRY400
            raise
        QUARANTINED.labels(reason=flaw.flaw.value).inc()
        if kept.evicted:
            QUARANTINE_EVICTED.inc(kept.evicted)
        # It needs a person: ERROR, one line, the id and why; never any of the body.
        log.error("webhook.quarantined", quarantine_id=kept.id, reason=flaw.flaw.value, detail=flaw.detail,
                  size=len(body), evicted=kept.evicted)  # fmt: skip
        return Receipt(Status.QUARANTINED, unreadable=flaw, quarantine_id=kept.id)

    async def replay(self, item_id: str) -> Replayed:
        """Put a quarantined body through the intake again. Now read (accepted, duplicate,
        ignored): it leaves the quarantine. Still unreadable, or its signature no longer verifies
        (a secret rotated away): it stays, keeping the reason it was kept for, with this attempt's
        noted beside it. Raises QueueUnavailable."""
        item = await self.quarantine.get(item_id)
        if item is None:
            return Replayed(item_id, "missing")
        try:
            outcome = await self.take(item.body, item.signature)
        except SignatureError as exc:
            reason = f"{exc}: no secret in CUBEHOOK_WEBHOOK_SECRETS verifies it now (rotated?)"
            return await self._still(item_id, "signature", reason)
        if outcome.unreadable is not None:
            return await self._still(item_id, outcome.unreadable.flaw.value, outcome.unreadable.detail)
        await self.quarantine.forget(item_id)
        log.info("quarantine.replayed", quarantine_id=item_id, result=outcome.status.value)
        return Replayed(item_id, outcome.status.value)

    async def _still(self, item_id: str, flaw: str, reason: str) -> Replayed:
        await self.quarantine.note(item_id, flaw, reason, datetime.now(UTC))
        log.warning("quarantine.kept", quarantine_id=item_id, reason=flaw, detail=reason)
        return Replayed(item_id, "kept", f"{flaw}: {reason}")

    async def _ignore(self, ref: EventRef, bound: FilteringBoundLogger) -> Status:
        """De-duplicate it, count it by type and put it on record. Never an error: a failure to
        answer 2xx would make ComplyCube retry, and in the end disable the webhook, for an event
        cubehook does not act on."""
        try:
            seen = await self.queue.see_ignored_async(ref)
        except QueueUnavailable as exc:
            bound.warning("webhook.unrecorded", error=str(exc))  # the log line is its record
            seen = Submitted.IGNORED
        if seen is Submitted.DUPLICATE:
            bound.info("webhook.duplicate")
            return Status.DUPLICATE
        count_ignored(ref.event_type)
        try:
            name, count = await self.ignored.count(ref.event_type)
        except RedisError as exc:
            name, count = ref.event_type, 0
            bound.warning("webhook.uncounted", error=str(exc))
        if count == 1:  # the first of its type, fleet-wide (or the first type past the cap)
            bound.warning("webhook.ignored_type_first_seen", counted_as=name)
        else:
            bound.info("webhook.ignored")
        return Status.IGNORED


def run_with_intake(settings: Settings, action: Callable[[Intake], Awaitable[T]]) -> T:
    """Run ``action`` on an Intake of its own, outside a server (the quarantine commands): it needs
    Redis and the webhook secrets, nothing else. Raises ConfigError and QueueUnavailable."""

    async def run() -> T:
        redis, aredis = redis_client(settings), async_redis_client(settings)
        try:
            return await action(Intake.build(settings, redis, aredis))
        finally:
            await aredis.aclose()
            redis.close()

    return asyncio.run(run())
