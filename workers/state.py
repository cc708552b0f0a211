"""What the workers keep about each session in Redis: its lock, its current decision and the
decisions it superseded, when its checks were first seen pending, and which session each check
belongs to.

One worker at a time works on a session. A job that finds the session busy leaves a "dirty" mark
and waits: the holder sees the mark before it lets go and fetches the session once more, so the
job's event is covered by a fetch that started after it; the waiter is then free to go. The lock
has a lease, so a holder that dies (SIGKILL) holds the session for at most ``lock_seconds``.

Each acquisition takes a fencing number. A decision is written only by a holder whose number is
not older than the last writer's, and only when the session's state (its fingerprint) changed: a
re-run after a crash, a duplicate event or a holder that outlived its lease cannot write twice or
overwrite a fresher decision.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from service.errors import SessionBusy
from service.settings import DAY
from workers.decide import Decision

PREFIX = "cubehook:session:"
CHECK_PREFIX = "cubehook:check:"
CHECK_INDEX_TTL = 365 * DAY

# Let go only when nobody asked for another look meanwhile; else keep the lease and say so.
_RELEASE_IF_IDLE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('DEL', KEYS[1])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Lease:
    session_id: str
    token: str
    fence: int


class Committed(StrEnum):
    NEW = "new"  # a decision for a new state, superseding the previous one if any
    UNCHANGED = "unchanged"  # this state was decided already
    STALE = "stale"  # a later holder has written since this one fetched: nothing written


class SessionStore:
    def __init__(self, redis: Redis, lock_seconds: int) -> None:
        self.redis = redis
        self.lock_ms = lock_seconds * 1000
        self._release_if_idle = redis.register_script(_RELEASE_IF_IDLE)
        self._release = redis.register_script(_RELEASE)

    @staticmethod
    def key(session_id: str, part: str) -> str:
        return f"{PREFIX}{session_id}:{part}"

    # --- one worker at a time ------------------------------------------------------------------

    def request(self, session_id: str) -> None:
        """Ask for a fresh look at the session (whoever holds it, or will)."""
        # Outlives any wait for the lock, so that only a holder can make it vanish; expires in the
        # end so that a mark nobody consumed does not linger.
        self.redis.set(self.key(session_id, "dirty"), "1", px=self.lock_ms * 3 + 5000)

    def try_acquire(self, session_id: str) -> Lease | None:
        token = secrets.token_hex(8)
        if not self.redis.set(self.key(session_id, "lock"), token, nx=True, px=self.lock_ms):
            return None
        fence = int(self.redis.incr(self.key(session_id, "fence")))
        return Lease(session_id, token, fence)

    def acquire_or_hand_off(self, session_id: str, poll: float = 0.05) -> Lease | None:
        """Request a look, then take the lock; None when the holder took the request over instead.
        Waits at most one lease (a dead holder's lock lapses by then)."""
        self.request(session_id)
        deadline = time.monotonic() + self.lock_ms / 1000 + 1
        while time.monotonic() < deadline:
            lease = self.try_acquire(session_id)
            if lease is not None:
                return lease
            if not self.redis.exists(self.key(session_id, "dirty")):
                return None  # the holder consumed the request: its next fetch covers ours
            time.sleep(poll)
        raise SessionBusy(f"session {session_id} stayed locked for a whole lease")

    def begin_round(self, lease: Lease) -> None:
        """Consume pending requests and renew the lease, before fetching."""
        pipe = self.redis.pipeline()
        pipe.delete(self.key(lease.session_id, "dirty"))
        pipe.pexpire(self.key(lease.session_id, "lock"), self.lock_ms)
        pipe.execute()

    def release_if_idle(self, lease: Lease) -> bool:
        """True when released; False when a request came in meanwhile (fetch again, lease renewed)."""
        keys = [self.key(lease.session_id, "lock"), self.key(lease.session_id, "dirty")]
        return int(self._release_if_idle(keys=keys, args=[lease.token, self.lock_ms])) != 0

    def release(self, lease: Lease) -> None:
        self._release(keys=[self.key(lease.session_id, "lock")], args=[lease.token])

    # --- decisions -----------------------------------------------------------------------------

    def current(self, session_id: str) -> Decision | None:
        raw = self.redis.hget(self.key(session_id, "state"), "decision")
        return Decision.from_dict(json.loads(raw)) if raw else None

    def find(self, session_id: str, decision_id: str) -> Decision | None:
        return next((d for d in self.history(session_id) if d.decision_id == decision_id), None)

    def history(self, session_id: str) -> list[Decision]:
        return [
            Decision.from_dict(json.loads(r))
            for r in self.redis.lrange(self.key(session_id, "history"), 0, -1)
        ]

    def commit(
        self,
        lease: Lease,
        fingerprint: str,
        make: Callable[[Decision | None], Decision],
        on_new: Callable[[Pipeline, Decision], object] | None = None,
    ) -> tuple[Committed, Decision | None]:
        """Write ``make(current)`` unless this state was decided already or a later holder wrote.
        ``on_new`` adds its own writes (the action jobs) to the same transaction."""
        state, history = self.key(lease.session_id, "state"), self.key(lease.session_id, "history")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(state)  # type: ignore[no-untyped-call]  # redis-py leaves watch() untyped
                    stored_fence, raw = pipe.hmget(state, ["fence", "decision"])
                    if stored_fence is not None and int(stored_fence) > lease.fence:
                        return Committed.STALE, None
                    current = Decision.from_dict(json.loads(raw)) if raw else None
                    pipe.multi()
                    pipe.hset(state, "fence", lease.fence)
                    if current is not None and current.fingerprint == fingerprint:
                        pipe.execute()
                        return Committed.UNCHANGED, current
                    decision = make(current)
                    document = json.dumps(decision.to_dict(), separators=(",", ":"))
                    pipe.hset(state, mapping={"decision": document, "fingerprint": fingerprint})
                    pipe.rpush(history, document)
                    if on_new is not None:
                        on_new(pipe, decision)
                    pipe.execute()
                    return Committed.NEW, decision
                except WatchError:
                    continue

    def record_progress(self, session_id: str, status: str) -> None:
        self.redis.hset(self.key(session_id, "state"), mapping={"status": status, "seen_at": time.time()})

    # --- pending checks ------------------------------------------------------------------------

    def pending_since(self, session_id: str, now: float) -> float:
        """When the session was first seen complete with checks pending (``now`` the first time)."""
        key = self.key(session_id, "pending_since")
        self.redis.set(key, repr(now), nx=True, ex=30 * DAY)
        return float(self.redis.get(key) or now)

    def clear_pending(self, session_id: str) -> None:
        self.redis.delete(self.key(session_id, "pending_since"))

    # --- which session a check belongs to ------------------------------------------------------

    def index_checks(self, session_id: str, check_ids: Iterable[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for check_id in check_ids:
            pipe.set(CHECK_PREFIX + check_id, session_id, ex=CHECK_INDEX_TTL)
        pipe.execute()

    def session_for_check(self, check_id: str) -> str | None:
        value = self.redis.get(CHECK_PREFIX + check_id)
        return value.decode() if isinstance(value, bytes) else value
