"""Noticing a Redis that came back without its data.

Redis holds what is in flight: queued jobs, scheduled retries and re-checks, the sessions' state.
A Redis restarted without persistence (or restored from an old copy, or replaced) forgets all of
it, and nothing in Redis itself can say so. So the data set carries an **epoch**: a random token
in a key with no expiry (``keys.EPOCH``), also kept in the audit trail (the ``markers`` table),
which outlives Redis. The workers' watch compares the two every few seconds:

- no epoch in Redis: a new data set; the first worker to see it writes a new token (SET NX);
- the same token in both: nothing happened (a restart that kept its data, a failover to a replica
  that had it);
- different tokens: Redis lost its data since the trail was last written beside it. One worker
  (a compare-and-set on the trail's row) says so (one ERROR line ``redis.data_lost``, the counter
  ``cubehook_redis_data_loss_total``, alerted) and queues an immediate recovery: a backfill from
  ComplyCube over the look-back window, and the ledger's reconciliation (workers.ledger), which
  re-queues every action the trail says is not sent. Decisions are never made twice: a session
  whose state Redis forgot is recalled from the trail.

The first run of a deployment (no row on the trail) records the epoch and alerts nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from redis import Redis
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from service import keys
from service.log import get_logger
from workers.audit import AuditStore
from workers.audit_schema import markers, now
from workers.outages import REDIS_DATA_LOSS

log = get_logger("cubehook.epoch")
MARKER = "redis_epoch"


class Epoch:
    """Compares Redis's epoch with the trail's; ``check`` calls ``on_loss`` once per loss."""

    def __init__(self, redis: Redis, audit: AuditStore, on_loss: Callable[[str], object]) -> None:
        self.redis = redis
        self.audit = audit
        self.on_loss = on_loss
        self.known: str | None = None  # the epoch both agreed on when last compared

    def check(self) -> bool:
        """True when this call found (and reported) a loss. Raises RedisError or a database error
        when either is away: the caller's next tick compares again."""
        current = self._redis_epoch()
        if current == self.known:
            return False  # one GET per tick while nothing changes
        stored = self._stored()
        if stored is None:
            self._swap(None, current)  # the first run: nothing to compare with
        elif stored != current and self._swap(stored, current):  # this worker is the one to say so
            REDIS_DATA_LOSS.inc()
            log.error(
                "redis.data_lost", hint="Redis came back without cubehook's data (its epoch changed): "
                "a backfill and the ledger's reconciliation are queued now; see docs/operations.md",
            )  # fmt: skip
            self.on_loss(current)
            self.known = current
            return True
        self.known = current
        return False

    def _redis_epoch(self) -> str:
        value = self.redis.get(keys.EPOCH)
        if value is None:
            self.redis.set(keys.EPOCH, secrets.token_hex(12), nx=True)
            value = self.redis.get(keys.EPOCH)
        return value.decode() if isinstance(value, bytes) else str(value)

    def _stored(self) -> str | None:
        with self.audit.engine.connect() as connection:
            row = connection.execute(select(markers.c.value).where(markers.c.name == MARKER)).first()
        return None if row is None else str(row.value)

    def _swap(self, old: str | None, new: str) -> bool:
        """Move the trail's epoch from ``old`` to ``new``; False when another worker did first."""
        try:
            with self.audit.engine.begin() as tx:
                if old is None:
                    tx.execute(insert(markers).values(name=MARKER, value=new, updated_at=now()))
                    return True
                moved = tx.execute(
                    update(markers)
                    .where((markers.c.name == MARKER) & (markers.c.value == old))
                    .values(value=new, updated_at=now())
                )
                return bool(moved.rowcount)
        except IntegrityError:
            return False  # another worker's first run wrote it
