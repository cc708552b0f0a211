"""What the intake keeps in Redis besides the queue: the quarantine of correctly signed deliveries
it could not read, and the tally of the event types it does not act on. Redis only: the web
process has nothing else. Every key and script of both is named here, once, each script saying
its KEYS and ARGV.

Why a quarantine: ComplyCube retries any non-2xx answer and disables the webhook after the 10th
failed retry (https://docs.complycube.com/api-reference/other-resources/webhooks), so a 4xx for a
signed body of a shape cubehook did not foresee would stop all onboarding. Such a body is
answered 2xx and kept whole (its bytes, the signature header as received, the reason and when), for
``cubehook quarantine replay`` to put it through the intake again after an upgrade.

Bounds, enforced in the one script that keeps an item, so concurrent web processes cannot
overshoot them: at most ``max_items`` items and ``max_bytes`` bytes of bodies, the oldest evicted
first (each eviction counted); each item kept ``retention`` seconds (a TTL on its key; the index
forgets it at the next write or read of the totals). The scripts name item keys built from a
prefix in ARGV: fine on a standalone or Sentinel-managed Redis, not on a Redis Cluster.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError, WatchError
from redis.typing import EncodableT

from service import keys, scripts
from service.errors import QueueUnavailable
from service.evalsha import async_script
from service.events import Unreadable

# Its keys (service.keys), by their short names here.
INDEX, SIZES, TOTAL = keys.QUARANTINE_INDEX, keys.QUARANTINE_SIZES, keys.QUARANTINE_BYTES
EVICTED, ITEM, IGNORED_TYPES = keys.QUARANTINE_EVICTED, keys.QUARANTINE_ITEM, keys.IGNORED_TYPES
MAX_IGNORED_TYPES = 100  # distinct types counted by name; the others as OTHER_TYPES
OTHER_TYPES = "(other)"

_ITEM_FIELDS = ("flaw", "reason", "at", "replayed_at", "last_flaw", "last_reason")
NOTE_TRIES = 5  # a note raced by another one is written again; by a forget or an eviction, not at all


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    kept_at: datetime
    size: int
    flaw: str  # why it was kept: a replay never changes it
    reason: str  # short and safe: field locations and messages, never any of the body
    replayed_at: str | None = None  # the latest replay that left it here, and why it stayed:
    last_flaw: str | None = None  # still unreadable (its flaw then), or "signature" when no
    last_reason: str | None = None  # secret verifies it now (a secret rotated away)
    body: bytes = b""  # only from Quarantine.get
    signature: str = ""  # the header as received; only from Quarantine.get


@dataclass(frozen=True, slots=True)
class Totals:
    items: int
    bytes: int
    evicted: int  # ever


@dataclass(frozen=True, slots=True)
class Kept:
    id: str
    evicted: int  # older items evicted to make room


class Quarantine:
    """The quarantine, on the asyncio client. Raises QueueUnavailable when Redis fails."""

    def __init__(
        self, redis: AsyncRedis, max_items: int, max_bytes: int, retention: int, *, loads_scripts: bool = True
    ) -> None:
        self.redis = redis
        self.bounds = (max_items, max_bytes)
        self.retention = retention
        self._keep = async_script(redis, scripts.QUARANTINE_KEEP, loads_scripts)
        self._forget = async_script(redis, scripts.QUARANTINE_FORGET, loads_scripts)

    async def keep(self, body: bytes, signature: str, unreadable: Unreadable) -> Kept:
        item_id = "q-" + secrets.token_hex(8)
        args = [ITEM, self.retention, item_id, body, signature.encode("latin-1"),
                unreadable.flaw.value, unreadable.detail, *self.bounds]  # fmt: skip
        with _unavailable():
            _at, evicted = await self._keep(keys=[INDEX, SIZES, TOTAL, EVICTED], args=args)
        return Kept(item_id, int(evicted))

    async def items(self) -> list[Item]:
        """Every item held, oldest first, without its body."""
        with _unavailable():
            listed = [text(raw) for raw in await self.redis.zrange(INDEX, 0, -1)]
            async with self.redis.pipeline(transaction=False) as pipe:
                for item_id in listed:
                    pipe.hmget(ITEM + item_id, *_ITEM_FIELDS)
                    pipe.hget(SIZES, item_id)
                answers = await pipe.execute()
        return [
            _item(item_id, fields, size)
            for item_id, fields, size in zip(listed, answers[::2], answers[1::2], strict=True)
            if fields[0] is not None  # else past its retention, not yet forgotten
        ]

    async def get(self, item_id: str) -> Item | None:
        with _unavailable():
            found = {text(k): v for k, v in (await self.redis.hgetall(ITEM + item_id)).items()}
        body = found.get("body")
        if not isinstance(body, bytes):
            return None
        signature = found.get("signature")
        item = _item(item_id, [found.get(name) for name in _ITEM_FIELDS], len(body))
        return replace(
            item, body=body, signature=signature.decode("latin-1") if isinstance(signature, bytes) else ""
        )

    async def forget(self, item_id: str) -> bool:
        with _unavailable():
            return bool(await self._forget(keys=[INDEX, SIZES, TOTAL], args=[ITEM, self.retention, item_id]))

    async def note(self, item_id: str, flaw: str, reason: str, when: datetime) -> bool:
        """Record a replay that left a held item where it was: its latest attempt, beside the reason
        it was kept for, never over it (that reason is what a person reads to fix it). False when
        the item is gone: an HSET then would make a key without a TTL, hence the WATCH."""
        key = ITEM + item_id
        latest: dict[EncodableT, EncodableT] = {
            "last_flaw": flaw, "last_reason": reason, "replayed_at": when.isoformat()
        }  # fmt: skip
        with _unavailable():
            async with self.redis.pipeline(transaction=True) as pipe:
                for _ in range(NOTE_TRIES):
                    try:
                        await pipe.watch(key)
                        if not await pipe.exists(key):
                            return False
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.hset(key, mapping=latest)
                        await pipe.execute()
                    except WatchError:
                        continue  # changed meanwhile: look again
                    return True
        return False


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc


def totals(redis: Redis, retention: int) -> Totals:
    """Items and bytes held, and evictions ever, on the blocking client (metrics, status).
    Raises RedisError."""
    items, size, evicted = redis.register_script(scripts.QUARANTINE_TOTALS)(
        keys=[INDEX, SIZES, TOTAL, EVICTED], args=[ITEM, retention]
    )
    return Totals(int(items), int(size), int(evicted))


class IgnoredTypes:
    """How many deliveries of each type cubehook did not act on, fleet-wide."""

    def __init__(self, redis: AsyncRedis, *, loads_scripts: bool = True) -> None:
        self._count = async_script(redis, scripts.COUNT_IGNORED, loads_scripts)

    async def count(self, event_type: str) -> tuple[str, int]:
        """Count one; returns the name it was counted under and that name's count now (1: a first).
        Raises RedisError."""
        name, count = await self._count(
            keys=[IGNORED_TYPES], args=[event_type, MAX_IGNORED_TYPES, OTHER_TYPES]
        )
        return text(name), int(count)


def ignored_types(redis: Redis) -> dict[str, int]:
    """The ignored types seen, with their counts, most frequent first. Raises RedisError."""
    counts = {text(k): int(text(v)) for k, v in redis.hgetall(IGNORED_TYPES).items()}
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def text(value: object) -> str:
    """A Redis reply as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _item(item_id: str, fields: list[object], size: object) -> Item:
    flaw, reason, at, replayed, last_flaw, last_reason = (None if f is None else text(f) for f in fields)
    kept_at = datetime.fromtimestamp(int(at or 0) / 1_000_000, UTC)
    size_ = int(text(size or 0))
    return Item(item_id, kept_at, size_, flaw or "", reason or "", replayed, last_flaw, last_reason)
