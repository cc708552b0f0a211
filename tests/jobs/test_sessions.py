"""SessionStore on a real Redis: the lock and its hand-off, fencing, once-per-state decisions."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable

import pytest
from redis import Redis
from redis.client import Pipeline

from service.queue import EventQueue, Submitted, accepted_at
from service.rq_jobs import EventRef
from service.settings import DAY, Settings
from tests.conftest import SEAL
from workers.judging.judge import Decision, Kind
from workers.leases import KEEPER, LeaseKeeper
from workers.sessions import Committed, HandedOff, Lease, SessionStore


def decision(fingerprint: str, supersedes: str | None = None, n: int = 1) -> Decision:
    return Decision(
        decision_id=f"dec_{n}", session_id="s1", client_id=None, template_id=None, status="complete",
        kind=Kind.OUTCOME, outcome="clear", session_outcome="clear", derived_outcome="clear",
        needs_review=False, reasons=(), discrepancies=(), checks=(), fingerprint=fingerprint,
        supersedes=supersedes, decided_at="t", trigger="e",
    )  # fmt: skip


@pytest.fixture
def store(redis: Redis) -> SessionStore:
    return SessionStore(redis, lock_seconds=2, seal=SEAL)


def take(store: SessionStore, session_id: str = "s1") -> Lease:
    lease = store.acquire_or_hand_off(session_id)
    assert isinstance(lease, Lease)
    return lease


def test_one_holder_at_a_time_with_growing_fences(store: SessionStore) -> None:
    first = take(store)
    assert store.acquire_or_hand_off("s1") == HandedOff("s1", first.fence)  # no wait
    assert store.release_if_idle(first, store.begin_round(first))
    second = take(store)
    assert second.fence == first.fence + 1


def test_a_request_during_the_round_keeps_the_holder_going(store: SessionStore) -> None:
    lease = take(store)
    started = store.begin_round(lease)
    assert isinstance(store.acquire_or_hand_off("s1"), HandedOff)  # an event arrives meanwhile
    assert store.requested("s1")
    assert not store.release_if_idle(lease, started)  # so the holder must look again
    again = store.begin_round(lease)  # it takes the request over with its next fetch
    assert again > started
    assert not store.requested("s1")
    assert store.release_if_idle(lease, again)


def test_a_request_accepted_before_the_round_began_is_answered_by_it(store: SessionStore) -> None:
    lease = take(store)
    started = store.begin_round(lease)
    # A job that sat in the queue: its event was accepted before this round started.
    assert isinstance(store.acquire_or_hand_off("s1", asked_at=started - 1), HandedOff)
    assert store.release_if_idle(lease, started)  # no second fetch
    assert not store.requested("s1")


def test_a_job_after_a_covering_round_has_nothing_to_fetch(store: SessionStore) -> None:
    lease = take(store)
    assert lease.covered == 0  # never looked at
    assert not lease.answers(None)
    started = store.begin_round(lease)
    assert store.release_if_idle(lease, started)
    later = take(store)
    assert later.covered == started
    assert later.answers(started - 1)  # accepted before the last look began
    assert not later.answers(started)
    assert not later.answers(None)  # a look asked for now
    store.release(later)
    assert not KEEPER.holds(store.key("s1", "lock"))  # let go: no longer renewed (nor said lost)
    failed = take(store)
    store.begin_round(failed)
    store.release(failed)  # a round that failed covers nothing
    assert take(store).covered == started


def test_the_web_side_and_the_workers_share_one_clock(
    store: SessionStore, redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    ref = EventRef("evt-clock", "workflowSession.completed", "workflowSession", "s1", "t")
    assert EventQueue(redis, make_settings()).submit(ref) is Submitted.ACCEPTED
    accepted = accepted_at(redis, "evt-clock")
    assert accepted is not None
    lease = take(store)
    started = store.begin_round(lease)
    assert accepted <= started
    seconds, micros = redis.time()
    assert abs(started - (seconds * 1_000_000 + micros)) < 5_000_000  # Redis's clock, in µs
    assert accepted_at(redis, "evt-unknown") is None


def test_a_dead_holders_lease_lapses(store: SessionStore) -> None:
    store.lock_ms = 300
    dead = take(store)
    KEEPER.forget(store.key("s1", "lock"), dead.token)  # its process died: nobody renews it
    assert isinstance(store.acquire_or_hand_off("s1"), HandedOff)
    time.sleep(0.4)
    taken = store.acquire_or_hand_off("s1")
    assert isinstance(taken, Lease)
    # Let go: a lease left to the keeper would be renewed after this test, on a client its fixture
    # closes, and the renewal's wait for it would hold up the next test's lease.
    store.release(taken)


def test_a_live_holder_keeps_its_lease_past_its_length(store: SessionStore) -> None:
    store.lock_ms = 2000
    lease = take(store)  # its process lives: the keeper renews the lease every 0.67 s
    started = store.begin_round(lease)
    time.sleep(5.0)  # 2.5 leases
    assert isinstance(store.acquire_or_hand_off("s1"), HandedOff)
    assert store.release_if_idle(lease, started) is False  # asked after the round began: again
    assert store.release_if_idle(lease, store.begin_round(lease))
    assert not KEEPER.holds(store.key("s1", "lock"))  # let go: no longer renewed


def test_no_request_is_lost_between_a_holder_letting_go_and_a_hand_off(store: SessionStore) -> None:
    """Race a holder's last round against jobs handing off: each job either took the lock or left
    a request the holder took over; none is left behind."""
    for _ in range(200):
        lease = take(store)
        got: list[Lease | HandedOff] = []
        racer = threading.Thread(target=lambda out=got: out.append(store.acquire_or_hand_off("s1")))
        racer.start()
        while not store.release_if_idle(lease, store.begin_round(lease)):
            pass
        racer.join()
        [result] = got
        if isinstance(result, Lease):  # it came after the holder let go: it holds the session
            assert store.release_if_idle(result, store.begin_round(result))
        assert not store.requested("s1")
        assert store.redis.get(store.key("s1", "lock")) is None


def test_decisions_are_once_per_state_and_chain(store: SessionStore) -> None:
    lease = take(store)
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
    assert store.redis.hget(store.key("s1", "state"), "fingerprint") == b"fp-b"  # as operators read it
    assert store.find("s1", "dec_1") == decision("fp-a")  # a superseded decision, for its actions
    assert store.find("s1", "dec_3") is None
    store.commit(lease, "fp-c", lambda prev: decision("fp-c", prev.decision_id if prev else None, 3))
    assert [d.fingerprint for d in store.history("s1")] == ["fp-a", "fp-b", "fp-c"]  # all of them


def test_the_store_from_settings_takes_its_lease_and_keeps_state_as_configured(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    store = SessionStore.from_settings(
        make_settings(session_lock_seconds=4, session_state_ttl_seconds=5000), redis
    )
    lease = take(store)
    assert 3000 < redis.pttl(store.key("s1", "lock")) <= 4000
    # The fence outlives the state it guards by a day: a new holder never numbers below a writer.
    assert 5000 + DAY - 60 < redis.ttl(store.key("s1", "fence")) <= 5000 + DAY
    store.commit(lease, "fp-a", lambda prev: decision("fp-a"))
    assert 4900 < redis.ttl(store.key("s1", "state")) <= 5000
    store.release(lease)


def test_a_new_decisions_own_writes_go_in_its_transaction_and_only_its(store: SessionStore) -> None:
    lease = take(store)

    def actions(pipe: Pipeline, made: Decision) -> None:
        pipe.rpush("actions", made.decision_id)

    assert store.commit(lease, "fp-a", lambda prev: decision("fp-a"), on_new=actions)[0] is Committed.NEW
    assert (
        store.commit(lease, "fp-a", lambda prev: decision("fp-a"), on_new=actions)[0] is Committed.UNCHANGED
    )
    assert store.redis.lrange("actions", 0, -1) == [b"dec_1"]


def test_a_write_between_the_look_and_the_commit_makes_it_look_again(store: SessionStore) -> None:
    lease = take(store)
    made: list[str | None] = []

    def make(prev: Decision | None) -> Decision:
        if not made:  # another writer touches the state meanwhile (WATCH sees it)
            store.redis.hset(store.key("s1", "state"), "seen_at", "1")
        made.append(prev.decision_id if prev else None)
        return decision("fp-a")

    assert store.commit(lease, "fp-a", make) == (Committed.NEW, decision("fp-a"))
    assert made == [None, None]  # looked twice, wrote once
    assert [d.fingerprint for d in store.history("s1")] == ["fp-a"]


def test_a_persons_decision_is_written_only_over_the_current_one(store: SessionStore) -> None:
    lease = take(store)
    store.commit(lease, "fp-a", lambda prev: decision("fp-a"))
    store.commit(lease, "fp-b", lambda prev: decision("fp-b", "dec_1", 2))  # Redis's current: dec_2

    def queued() -> list[bytes | str]:
        return store.redis.lrange("actions", 0, -1)

    def actions(pipe: Pipeline, made: Decision) -> None:
        pipe.rpush("actions", made.decision_id)  # in the decision's transaction

    # Made over dec_1, which the audit trail still gives as the latest (it has not recorded dec_2).
    late = decision("fp-b", "dec_1", 3)
    assert store.commit_over(late, actions, lambda sid: decision("fp-a")) == decision("fp-b", "dec_1", 2)
    assert queued() == []
    over = decision("fp-b", "dec_2", 4)
    assert store.commit_over(over, actions, lambda sid: None) == over
    assert queued() == [b"dec_4"]
    assert [d.decision_id for d in store.history("s1")] == ["dec_1", "dec_2", "dec_4"]
    assert store.current("s1") == over
    store.redis.delete(store.key("s1", "state"))  # idle past its time to live: the trail recalls it
    recalled: list[str] = []

    def recall(session_id: str) -> Decision:
        if not recalled:  # a worker writes the state meanwhile (WATCH sees it): look again
            store.redis.hset(store.key(session_id, "state"), "seen_at", "1")
        recalled.append(session_id)
        return over

    again = decision("fp-b", "dec_4", 5)
    assert store.commit_over(again, actions, recall) == again
    assert recalled == ["s1", "s1"]
    assert queued() == [b"dec_4", b"dec_5"]
    assert store.current("s1") == again


def test_a_round_renews_the_lease_itself(store: SessionStore) -> None:
    lease = take(store)
    lock = store.key("s1", "lock")
    KEEPER.forget(lock, lease.token)  # as if the keeper had not gone round yet
    store.redis.pexpire(lock, 100)
    store.begin_round(lease)
    assert 1000 < store.redis.pttl(lock) <= 2000
    store.release(lease)


def test_an_older_holder_cannot_overwrite_a_newer_decision(store: SessionStore) -> None:
    old = take(store)
    store.redis.delete(store.key("s1", "lock"))  # its lease lapsed while it was slow
    new = take(store)
    assert store.commit(new, "fresh", lambda prev: decision("fresh"))[0] is Committed.NEW
    assert store.commit(old, "stale", lambda prev: decision("stale")) == (Committed.STALE, None)
    assert [d.fingerprint for d in store.history("s1")] == ["fresh"]


def test_pending_since_is_the_first_sighting(store: SessionStore) -> None:
    assert store.pending_since("s1", 100.0) == 100.0
    assert store.pending_since("s1", 250.0) == 100.0
    store.clear_pending("s1")
    assert store.pending_since("s1", 300.0) == 300.0
    # It leaves Redis with the session's other state once the session is idle.
    assert 7 * DAY - 60 < store.redis.ttl(store.key("s1", "pending_since")) <= 7 * DAY


def test_progress_is_kept_in_the_sessions_state_for_as_long_as_the_rest(store: SessionStore) -> None:
    before = time.time()
    store.record_progress("s1", "in_progress")
    state = store.redis.hgetall(store.key("s1", "state"))
    assert set(state) == {b"status", b"seen_at"}
    assert state[b"status"] == b"in_progress"
    assert before <= float(state[b"seen_at"]) <= time.time()
    assert 7 * DAY - 60 < store.redis.ttl(store.key("s1", "state")) <= 7 * DAY


def test_check_index(store: SessionStore) -> None:
    store.index_checks("s1", ["c1", "c2"])
    assert store.session_for_check("c2") == "s1"
    assert store.session_for_check("c3") is None


def wait_until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_lease_released_while_the_keeper_renews_is_not_reported_lost(
    redis: Redis, log_output: io.StringIO
) -> None:
    keeper = LeaseKeeper()
    for n in range(20):  # as jobs come and go: each lease is held while the keeper waits, then let go
        held = keeper.take(redis, f"passing:{n}", "t", 3000)  # wakes the keeper, which then waits 1 s
        time.sleep(0.05)
        keeper.release(held)
    last = keeper.take(redis, "passing:last", "t", 300)
    redis.pexpire("passing:last", 60_000)
    wait_until(lambda: int(redis.pttl("passing:last")) <= 300)  # renewed: the thread went round
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert [line for line in lines if str(line.get("key")).startswith("passing:")] == []
    keeper.release(last)


def test_the_keeper_renews_a_lease_every_third_of_it_with_nothing_else_happening(redis: Redis) -> None:
    keeper = LeaseKeeper()
    held = keeper.take(redis, "quiet", "t", 300)
    assert 0 < redis.pttl("quiet") <= 300  # a lease from the start: its holder may die at once
    for _ in range(10):  # 1.5 s, five leases: only the keeper's own rounds keep it
        time.sleep(0.15)
        assert redis.get("quiet") == b"t"
    keeper.release(held)
    assert redis.get("quiet") is None


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_keeper_outlives_a_moment_with_no_lease_to_renew(redis: Redis) -> None:
    keeper = LeaseKeeper()
    for n in range(5):  # each time the keeper wakes to find nothing held
        keeper.release(keeper.take(redis, f"brief:{n}", "t", 300))
        time.sleep(0.05)
    time.sleep(0.5)


def test_a_lease_taken_away_while_held_is_reported_lost(redis: Redis, log_output: io.StringIO) -> None:
    keeper = LeaseKeeper()
    keeper.take(redis, "stolen", "t", 300)
    redis.delete("stolen")
    wait_until(lambda: not keeper.holds("stolen"))
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert [line["event"] for line in lines if line.get("key") == "stolen"] == ["lease.lost"]
