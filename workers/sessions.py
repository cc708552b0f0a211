"""What the workers keep about each session in Redis: its lock, its current decision and the
decisions it superseded, when its checks were first seen pending, and which session each check
belongs to.

One worker at a time works on a session. A job that finds the session busy leaves a request (the
"dirty" mark) and finishes at once: the holder sees the request before it lets go and fetches the
session once more, so the job's event is covered by a fetch that started after it. Leaving the
request and trying the lock are one atomic step, so the request is either seen by the holder or
the job takes the lock itself.

A look is needed only when it starts after the event was accepted: the web side stamps each event
with Redis's clock as it accepts it, each round is stamped with the same clock as it begins, and a
request carries the latest stamp it was asked for. A holder lets go when its round started after
every request; a job that takes the lock after a round that started later than its event was
accepted has nothing to fetch ("covered"). So a burst of events about one session, or a backlog
drained late, costs one or two fetches rather than one per event.

The lock has a lease, renewed while its holder works (workers.leases), so a holder that dies
(SIGKILL) holds the session for at most ``lock_seconds``. The dead holder's job is put back in the
queue once its own lease lapses (workers.recovery) and takes the requests over; the job that
handed off also schedules one follow-up per lease, which does nothing unless the request is still
there when the lease is over (see workers.pipeline).

Each acquisition takes a fencing number. A decision is written only by a holder whose number is
not older than the last writer's, and only when the session's state (its fingerprint) changed: a
re-run after a crash, a duplicate event or a holder that outlived its lease cannot write twice or
overwrite a fresher decision.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from redis.typing import EncodableT

from service import keys, scripts
from service.settings import DAY, Settings
from workers.judging.judge import Decision
from workers.leases import KEEPER
from workers.seal import DecisionSeal


@dataclass(frozen=True, slots=True)
class Lease:
    session_id: str
    token: str
    fence: int
    # When the last completed look at the session started (Redis clock, µs; 0 for never): a
    # request made before then is answered already.
    covered: int = 0

    def answers(self, asked_at: int | None) -> bool:
        return asked_at is not None and asked_at < self.covered


@dataclass(frozen=True, slots=True)
class HandedOff:
    """The session was busy: its holder (the lease numbered ``fence``) will look again for us."""

    session_id: str
    fence: int


class Committed(StrEnum):
    NEW = "new"  # a decision for a new state, superseding the previous one if any
    UNCHANGED = "unchanged"  # this state was decided already
    STALE = "stale"  # a later holder has written since this one fetched: nothing written


class SessionStore:
    """A session's state in Redis (see the module's docstring): its lock with the hand-off of
    requests, the fenced, once-per-state decisions and their history, when its checks were first
    seen pending, and the index from checks to sessions."""

    def __init__(
        self, redis: Redis, lock_seconds: int, state_ttl: int = 7 * DAY, *, seal: DecisionSeal
    ) -> None:
        self.redis = redis
        # Every decision written is sealed, and one read back acted on only when its seal verifies.
        self.seal = seal
        self.lock_ms = lock_seconds * 1000
        # Every key of a session lives this long after its last write: an idle session's state
        # leaves Redis; its decisions stay in the audit trail, which ``commit`` falls back on.
        self.state_ttl = state_ttl
        self._release_if_idle = redis.register_script(scripts.RELEASE_IF_IDLE)
        self._release = redis.register_script(scripts.DROP)  # the lock, when still ours
        self._hand_off = redis.register_script(scripts.HAND_OFF)
        self._begin_round = redis.register_script(scripts.BEGIN_ROUND)

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis) -> SessionStore:
        seal = DecisionSeal.from_settings(settings)
        return cls(redis, settings.session_lock_seconds, settings.session_state_ttl_seconds, seal=seal)

    @property
    def _request_ms(self) -> int:
        # A request outlives any lease, so that only a holder (or the follow-up) makes it vanish;
        # it expires in the end so that a request nobody took over does not linger.
        return self.lock_ms * 3 + 5000

    @staticmethod
    def key(session_id: str, part: str) -> str:
        return keys.session(session_id, keys.SessionPart(part))

    # --- one worker at a time ------------------------------------------------------------------

    def acquire_or_hand_off(self, session_id: str, asked_at: int | None = None) -> Lease | HandedOff:
        """Take the lock, or leave the holder a request to look again; never waits. ``asked_at``
        is when the look was asked for (Redis clock, µs): when the web side accepted the event.
        None means now."""
        token = secrets.token_hex(8)
        keys = [self.key(session_id, p) for p in ("lock", "dirty", "fence", "covered")]
        args: list[EncodableT] = [
            token, self.lock_ms, self._request_ms, "" if asked_at is None else asked_at, self.state_ttl + DAY,
        ]  # fmt: skip
        answer = self._hand_off(keys=keys, args=args)
        if int(answer[0]):
            # Renewed while held (workers.leases), so a holder that works longer keeps it and a
            # dead holder's lapses within one lease.
            KEEPER.keep(self.redis, keys[0], token, self.lock_ms)
            return Lease(session_id, token, int(answer[1]), int(answer[2]))
        return HandedOff(session_id, int(answer[1]))

    def requested(self, session_id: str) -> bool:
        """A request for a look is still waiting for a holder to take it over."""
        return bool(self.redis.exists(self.key(session_id, "dirty")))

    def begin_round(self, lease: Lease) -> int:
        """Take pending requests over and renew the lease, before fetching; returns when the round
        started (Redis clock, µs)."""
        keys = [self.key(lease.session_id, "lock"), self.key(lease.session_id, "dirty")]
        return int(self._begin_round(keys=keys, args=[self.lock_ms]))

    def release_if_idle(self, lease: Lease, round_started: int) -> bool:
        """True when released; False when a request asked after the round started (look again,
        lease renewed). Requests made before it are answered by the round."""
        keys = [self.key(lease.session_id, p) for p in ("lock", "dirty", "covered")]
        args: list[EncodableT] = [lease.token, self.lock_ms, round_started, self.state_ttl]
        # Not renewed while the script may let go: a renewal after it would find the lock gone
        # and report it lost. Kept again when the script holds on.
        KEEPER.forget(keys[0], lease.token)
        released = int(self._release_if_idle(keys=keys, args=args)) != 0
        if not released:
            KEEPER.keep(self.redis, keys[0], lease.token, self.lock_ms)
        return released

    def release(self, lease: Lease) -> None:
        KEEPER.forget(self.key(lease.session_id, "lock"), lease.token)  # first: as above
        self._release(keys=[self.key(lease.session_id, "lock")], args=[lease.token])

    # --- decisions -----------------------------------------------------------------------------

    def current(self, session_id: str) -> Decision | None:
        return self.seal.opened(self.redis.hget(self.key(session_id, "state"), "decision"), session_id)

    def find(self, session_id: str, decision_id: str) -> Decision | None:
        return next((d for d in self.history(session_id) if d.decision_id == decision_id), None)

    def history(self, session_id: str) -> list[Decision]:
        """The session's decisions, oldest first; any whose seal does not verify left out."""
        raws = self.redis.lrange(self.key(session_id, "history"), 0, -1)
        return [d for d in (self.seal.opened(raw, session_id) for raw in raws) if d is not None]

    def commit(
        self,
        lease: Lease,
        fingerprint: str,
        make: Callable[[Decision | None], Decision],
        on_new: Callable[[Pipeline, Decision], object] | None = None,
        recall: Callable[[str], Decision | None] | None = None,
    ) -> tuple[Committed, Decision | None]:
        """Write ``make(current)`` unless this state was decided already or a later holder wrote.
        ``on_new`` adds its own writes (the action jobs) to the same transaction. ``recall`` gives
        the current decision when Redis no longer holds it (the session was idle past the state's
        time to live): the audit trail's latest."""
        state, history = self.key(lease.session_id, "state"), self.key(lease.session_id, "history")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(state)  # type: ignore[no-untyped-call]  # redis-py leaves watch() untyped
                    stored_fence, raw = pipe.hmget(state, ["fence", "decision"])
                    if stored_fence is not None and int(stored_fence) > lease.fence:
                        return Committed.STALE, None
                    current = self.seal.opened(raw, lease.session_id)
                    held = current is not None  # else recalled: Redis lost it, or held a forgery
                    if current is None and recall is not None:
                        current = recall(lease.session_id)
                    pipe.multi()
                    pipe.hset(state, "fence", lease.fence)
                    pipe.expire(state, self.state_ttl)
                    if current is not None and current.fingerprint == fingerprint:
                        if not held:  # recalled: Redis holds it again
                            pipe.hset(state, mapping=self._stored(current))
                        pipe.execute()
                        return Committed.UNCHANGED, current
                    decision = make(current)
                    stored = self._stored(decision)
                    pipe.hset(state, mapping=stored)
                    pipe.rpush(history, stored["decision"])
                    pipe.expire(history, self.state_ttl)
                    if on_new is not None:
                        on_new(pipe, decision)
                    pipe.execute()
                    return Committed.NEW, decision
                except WatchError:
                    continue

    def commit_over(
        self,
        decision: Decision,
        on_new: Callable[[Pipeline, Decision], object],
        recall: Callable[[str], Decision | None],
    ) -> Decision | None:
        """Write ``decision`` (a person's, workers.manual) as the session's current decision, with
        its actions (``on_new``) in the same transaction, only while the one it supersedes is still
        current. Returns the current decision: ``decision`` when written (or written before: a
        double submit), else whichever came first (nothing written). Takes no lock and leaves the
        fence alone: a worker's commit meanwhile makes this one look again (WATCH), and this one
        makes a worker's look again."""
        state, history = self.key(decision.session_id, "state"), self.key(decision.session_id, "history")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(state)  # type: ignore[no-untyped-call]  # redis-py leaves watch() untyped
                    current = self.seal.opened(pipe.hget(state, "decision"), decision.session_id)
                    current = current or recall(decision.session_id)
                    if current is None or current.decision_id != decision.supersedes:
                        return current
                    pipe.multi()
                    stored = self._stored(decision)
                    pipe.hset(state, mapping=stored)
                    pipe.expire(state, self.state_ttl)
                    pipe.rpush(history, stored["decision"])
                    pipe.expire(history, self.state_ttl)
                    on_new(pipe, decision)
                    pipe.execute()
                    return decision
                except WatchError:
                    continue

    def record_progress(self, session_id: str, status: str) -> None:
        state = self.key(session_id, "state")
        with self.redis.pipeline() as pipe:
            pipe.hset(state, mapping={"status": status, "seen_at": time.time()})
            pipe.expire(state, self.state_ttl)
            pipe.execute()

    # --- pending checks ------------------------------------------------------------------------

    def pending_since(self, session_id: str, now: float) -> float:
        """When the session was first seen complete with checks pending (``now`` the first time)."""
        key = self.key(session_id, "pending_since")
        self.redis.set(key, repr(now), nx=True, ex=self.state_ttl)
        return float(self.redis.get(key) or now)

    def clear_pending(self, session_id: str) -> None:
        self.redis.delete(self.key(session_id, "pending_since"))

    # --- which session a check belongs to ------------------------------------------------------

    def index_checks(self, session_id: str, check_ids: Iterable[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for check_id in check_ids:
            pipe.set(keys.check(check_id), session_id, ex=self.state_ttl)
        pipe.execute()

    def session_for_check(self, check_id: str) -> str | None:
        value = self.redis.get(keys.check(check_id))
        return value.decode() if isinstance(value, bytes) else value

    def _stored(self, decision: Decision) -> dict[EncodableT, EncodableT]:
        """A decision as the state hash holds it: sealed."""
        return {"decision": self.seal.sealed(decision), "fingerprint": decision.fingerprint}
