"""SessionStore on a real Redis: the lock and its hand-off, fencing, once-per-state decisions."""

from __future__ import annotations

import threading

import pytest
from redis import Redis

from service.errors import SessionBusy
from workers.decide import Decision, Kind
from workers.state import Committed, SessionStore


def decision(fingerprint: str, supersedes: str | None = None, n: int = 1) -> Decision:
    return Decision(
        decision_id=f"dec_{n}", session_id="s1", client_id=None, template_id=None, status="complete",
        kind=Kind.OUTCOME, outcome="clear", session_outcome="clear", derived_outcome="clear",
        needs_review=False, reasons=(), discrepancies=(), checks=(), fingerprint=fingerprint,
        supersedes=supersedes, decided_at="t", trigger="e",
    )  # fmt: skip


@pytest.fixture
def store(redis: Redis) -> SessionStore:
    return SessionStore(redis, lock_seconds=2)


def test_one_holder_at_a_time_with_growing_fences(store: SessionStore) -> None:
    first = store.try_acquire("s1")
    assert first is not None
    assert store.try_acquire("s1") is None
    assert store.release_if_idle(first)
    second = store.try_acquire("s1")
    assert second is not None
    assert second.fence > first.fence


def test_a_request_during_the_work_keeps_the_holder_going(store: SessionStore) -> None:
    lease = store.try_acquire("s1")
    assert lease is not None
    store.begin_round(lease)
    store.request("s1")  # an event arrived while the holder was fetching
    assert not store.release_if_idle(lease)  # so it must look again
    store.begin_round(lease)
    assert store.release_if_idle(lease)


def test_a_waiter_hands_off_to_the_holder(store: SessionStore) -> None:
    lease = store.try_acquire("s1")
    assert lease is not None
    handed: list[object] = []
    waiter = threading.Thread(target=lambda: handed.append(store.acquire_or_hand_off("s1")))
    waiter.start()
    while not store.redis.exists(store.key("s1", "dirty")):
        pass
    store.begin_round(lease)  # the holder takes the request over: its next fetch covers it
    waiter.join(timeout=5)
    assert handed == [None]
    assert store.release_if_idle(lease)


def test_a_waiter_takes_over_once_the_holder_lets_go(store: SessionStore) -> None:
    lease = store.try_acquire("s1")
    assert lease is not None
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(store.acquire_or_hand_off("s1")))
    waiter.start()
    while not store.redis.exists(store.key("s1", "dirty")):
        pass
    store.release(lease)  # e.g. the holder failed and gave the session up
    waiter.join(timeout=5)
    assert len(got) == 1
    assert got[0] is not None


def test_a_dead_holders_lease_lapses(store: SessionStore) -> None:
    assert store.try_acquire("s1") is not None  # never released: its holder "died"
    lease = store.acquire_or_hand_off("s1", poll=0.05)  # waits out the 2 s lease
    assert lease is not None


def test_a_lock_held_for_longer_than_a_lease_is_busy(store: SessionStore, redis: Redis) -> None:
    redis.set(store.key("s1", "lock"), "someone", px=60_000)
    store.lock_ms = 200
    with pytest.raises(SessionBusy):
        store.acquire_or_hand_off("s1")


def test_decisions_are_once_per_state_and_chain(store: SessionStore) -> None:
    lease = store.try_acquire("s1")
    assert lease is not None
    assert store.commit(lease, "fp-a", lambda prev: decision("fp-a")) == (Committed.NEW, decision("fp-a"))
    status, same = store.commit(lease, "fp-a", lambda prev: pytest.fail("must not build a decision"))
    assert (status, same) == (Committed.UNCHANGED, decision("fp-a"))
    status, newer = store.commit(
        lease, "fp-b", lambda prev: decision("fp-b", prev.decision_id if prev else None, 2)
    )
    assert status is Committed.NEW
    assert newer is not None
    assert newer.supersedes == "dec_1"
    assert [d.fingerprint for d in store.history("s1")] == ["fp-a", "fp-b"]
    assert store.current("s1") == newer


def test_an_older_holder_cannot_overwrite_a_newer_decision(store: SessionStore) -> None:
    old = store.try_acquire("s1")
    assert old is not None
    store.redis.delete(store.key("s1", "lock"))  # its lease lapsed while it was slow
    new = store.try_acquire("s1")
    assert new is not None
    assert store.commit(new, "fresh", lambda prev: decision("fresh"))[0] is Committed.NEW
    assert store.commit(old, "stale", lambda prev: decision("stale")) == (Committed.STALE, None)
    assert [d.fingerprint for d in store.history("s1")] == ["fresh"]


def test_pending_since_is_the_first_sighting(store: SessionStore) -> None:
    assert store.pending_since("s1", 100.0) == 100.0
    assert store.pending_since("s1", 250.0) == 100.0
    store.clear_pending("s1")
    assert store.pending_since("s1", 300.0) == 300.0


def test_check_index(store: SessionStore) -> None:
    store.index_checks("s1", ["c1", "c2"])
    assert store.session_for_check("c2") == "s1"
    assert store.session_for_check("c3") is None
