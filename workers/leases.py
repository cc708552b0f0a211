"""Leases kept alive while their holder works, by a background thread of the holding process.

A lease is a Redis key holding its holder's token with a short expiry. While the holder lives, the
keeper renews it every third of its lease; when the holder dies (SIGKILL, a lost machine), nobody
renews it and it lapses within one lease. Two kinds are kept here:

- a job's **liveness key** (``cubehook:job:alive:<job id>``), set by the worker before RQ marks the
  job started, and read by the recovery sweep (workers.recovery): a started job whose key has
  lapsed was left by a dead worker and is queued again;
- a session's **lock** (workers.sessions), so that a holder working longer than one lease keeps it,
  and a dead holder's lock lapses in one short lease instead of a long one.

One keeper per process; after a fork (RQ's forking worker runs each job in a child) the child
starts with an empty keeper of its own: leases held by the parent stay the parent's to renew.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from service import scripts
from service.log import get_logger

log = get_logger("cubehook.leases")


@dataclass(frozen=True, slots=True)
class Held:
    redis: Redis
    key: str
    token: str
    lease_ms: int


class LeaseKeeper:
    """Renews the leases this process holds, from one daemon thread started on first use."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # A forked child gets a copy of the parent's leases and maybe of a lock held by its thread
        # at the instant of the fork: it starts afresh instead, with no thread yet.
        self._held: dict[str, Held] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self, redis: Redis, key: str, token: str, lease_ms: int) -> Held:
        """Set ``key`` to ``token`` with a lease, and keep renewing it until ``drop``."""
        redis.set(key, token, px=lease_ms)
        return self.keep(redis, key, token, lease_ms)

    def keep(self, redis: Redis, key: str, token: str, lease_ms: int) -> Held:
        """Keep renewing a lease the caller has just taken (e.g. by a script of its own)."""
        held = Held(redis, key, token, lease_ms)
        with self._guard:
            self._held[key] = held
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cubehook-leases", daemon=True)
                self._thread.start()
        self._wake.set()  # a shorter lease than the others: the thread's next pause must be shorter
        return held

    def release(self, held: Held) -> None:
        """Stop renewing, and give the lease up now when it is still ours. With Redis away the
        lease cannot be given up: it lapses by itself within one lease, which is as good (the
        recovery sweep then treats the job as a dead worker's, and runs it again, safely)."""
        self.forget(held.key, held.token)
        try:
            held.redis.eval(scripts.DROP, 1, held.key, held.token)
        except RedisError as exc:
            log.debug("lease.release_failed", key=held.key, error=str(exc))

    def forget(self, key: str, token: str) -> None:
        """Stop renewing (the holder let go by a script of its own, or lost the lease)."""
        with self._guard:
            held = self._held.get(key)
            if held is not None and held.token == token:
                del self._held[key]

    def holds(self, key: str) -> bool:
        with self._guard:
            return key in self._held

    def _run(self) -> None:
        while True:
            with self._guard:
                period = min((h.lease_ms for h in self._held.values()), default=3000) / 3000
            self._wake.wait(period)
            self._wake.clear()
            with self._guard:  # as held now: a lease released during the wait is not renewed
                leases = list(self._held.values())
            for held in leases:
                self._renew(held)

    def _renew(self, held: Held) -> None:
        try:
            kept = held.redis.eval(scripts.RENEW, 1, held.key, held.token, held.lease_ms)
        except RedisError as exc:
            # Redis is away: the lease may lapse, and the work be done again elsewhere; once-per-state
            # decisions and the action ledger keep that safe. The outage is said once, elsewhere
            # (workers.outages); a line per lease and renewal would bury it.
            log.debug("lease.renew_failed", key=held.key, error=str(exc))
            return
        except Exception as exc:  # the holder closed its client (shutting down): it let go
            self.forget(held.key, held.token)
            log.warning("lease.abandoned", key=held.key, error=type(exc).__name__)
            return
        if not kept and self._holding(held):  # not released meanwhile: lost while still held
            self.forget(held.key, held.token)
            log.warning("lease.lost", key=held.key)

    def _holding(self, held: Held) -> bool:
        with self._guard:
            return self._held.get(held.key) is held


KEEPER = LeaseKeeper()
