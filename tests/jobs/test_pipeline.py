"""Events through a real RQ worker against the simulator: one decision per state, in any order."""

from __future__ import annotations

import random

import pytest
from rq import SimpleWorker
from rq.job import JobStatus

from service.quarantine import text
from service.queue import Submitted
from service.rq_jobs import JOB_OPTIONS
from tests.conftest import SimServer
from tests.jobs.conftest import Pipeline
from workers.sessions import Lease


def test_a_completed_session_is_decided_with_its_reconciliation(pipeline: Pipeline, sim: SimServer) -> None:
    created = sim.create(preset="disagree", mode="settled")
    pipeline.submit(created["sessionId"])
    pipeline.work()
    [decision] = pipeline.decisions(created["sessionId"])
    assert decision.outcome == "rejected"  # the session said clear; a check said rejected
    assert decision.session_outcome == "clear"
    assert decision.derived_outcome == "rejected"
    assert decision.needs_review
    assert [d["issue"] for d in decision.discrepancies] == ["outcomes_disagree"]
    assert decision.client_id == created["clientId"]
    assert [c["outcome"] for c in decision.checks] == ["rejected", "clear", "clear"]
    assert decision.supersedes is None


def test_duplicate_and_repeated_events_make_one_decision(pipeline: Pipeline, sim: SimServer) -> None:
    created = sim.create(preset="rejected", mode="settled")
    sid = created["sessionId"]
    pipeline.submit(sid, event_id="same-event")
    with pytest.raises(AssertionError):  # the intake refuses the duplicate
        pipeline.submit(sid, event_id="same-event")
    for _ in range(3):
        pipeline.submit(sid)  # distinct events about the same state
    pipeline.work()
    assert [d.outcome for d in pipeline.decisions(sid)] == ["rejected"]
    # The first look started after all four were accepted: it answers the other three.
    assert sorted(r["result"] for r in pipeline.results()) == ["covered", "covered", "covered", "decided"]
    pipeline.submit(sid)  # accepted after that look: a look of its own, which changes nothing
    pipeline.work()
    assert sorted(r["result"] for r in pipeline.results()).count("unchanged") == 1
    assert [d.outcome for d in pipeline.decisions(sid)] == ["rejected"]


def test_out_of_order_events_converge_on_the_final_state(pipeline: Pipeline, sim: SimServer) -> None:
    created = sim.create(preset="attention", mode="manual")
    sid = created["sessionId"]
    sim.control("POST", f"/_sim/sessions/{sid}/advance")  # processing
    pipeline.submit(sid, "workflowSession.processing")
    pipeline.work()
    assert pipeline.decisions(sid) == []  # not complete yet: progress only
    sim.control("POST", f"/_sim/sessions/{sid}/advance")  # complete
    pipeline.submit(sid, "workflowSession.started")  # a late, older event
    pipeline.work()
    assert [d.outcome for d in pipeline.decisions(sid)] == ["attention"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_deliveries_decide_the_same(pipeline: Pipeline, sim: SimServer, seed: int) -> None:
    expected = {"clear": "clear", "attention": "attention", "rejected": "rejected", "failed": "attention",
                "unknown": "attention", "disagree": "rejected"}  # fmt: skip
    sessions = {
        sim.create(preset=preset, mode="settled")["sessionId"]: outcome
        for preset, outcome in expected.items()
    }
    events = [(sid, t) for sid in sessions for t in ("workflowSession.started", "workflowSession.processing",
                                                     "workflowSession.completed")]  # fmt: skip
    random.Random(seed).shuffle(events)
    for sid, event_type in events:
        pipeline.submit(sid, event_type)
    pipeline.work()
    for sid, outcome in sessions.items():
        assert [d.outcome for d in pipeline.decisions(sid)] == [outcome]


@pytest.mark.parametrize("preset", ["abandoned", "cancelled"])
def test_abandoned_and_cancelled_get_a_terminal_decision(
    pipeline: Pipeline, sim: SimServer, preset: str
) -> None:
    sid = sim.create(preset=preset, mode="settled")["sessionId"]
    pipeline.submit(sid, f"workflowSession.{preset}")
    pipeline.work()
    [decision] = pipeline.decisions(sid)
    assert (decision.kind.value, decision.outcome, decision.status) == ("terminal", None, preset)


def test_a_revalidated_check_supersedes_the_decision(pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    check_id = sim.session(sid)["allRelatedChecks"][2]["checkId"]
    sim.control("POST", f"/_sim/checks/{check_id}", json={"outcome": "match_confirmed"})
    pipeline.submit(check_id, "check.completed")
    pipeline.work()
    first, second = pipeline.decisions(sid)
    assert (first.outcome, second.outcome) == ("clear", "rejected")
    assert second.supersedes == first.decision_id
    assert pipeline.runtime.store.current(sid) == second


def test_a_check_event_finds_its_session_through_the_api(pipeline: Pipeline, sim: SimServer) -> None:
    """No event of the session was seen before, so the check is not indexed yet."""
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    check_id = sim.session(sid)["allRelatedChecks"][0]["checkId"]
    pipeline.submit(check_id, "check.completed.rejected")
    pipeline.work()
    assert [d.outcome for d in pipeline.decisions(sid)] == ["rejected"]


def test_an_event_for_a_check_the_api_does_not_know_is_recorded_without_retries(
    pipeline: Pipeline, sim: SimServer
) -> None:
    pipeline.submit("000000000000000000000000", "check.completed")
    pipeline.work()
    assert pipeline.queue.failed_job_registry.count == 0  # 404 for the check itself: nothing to retry
    assert pipeline.results()[0]["result"] == "unknown"


def test_a_pending_check_that_later_completes(pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="pending_check", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    assert pipeline.decisions(sid) == []
    assert pipeline.results()[0]["result"] == "waiting"
    scheduled = pipeline.queue.scheduled_job_registry.get_job_ids()
    assert scheduled == [f"recheck-{sid}-1"]
    pending_id = sim.session(sid)["allRelatedChecks"][1]["checkId"]
    sim.control("POST", f"/_sim/checks/{pending_id}", json={"outcome": "clear"})
    pipeline.submit(pending_id, "check.completed.clear")
    pipeline.work()
    [decision] = pipeline.decisions(sid)
    assert decision.outcome == "clear"
    assert not decision.needs_review


def test_an_event_for_a_session_the_api_does_not_know_is_recorded_without_retries(pipeline: Pipeline) -> None:
    event_id = pipeline.submit("ffffffffffffffffffffffff")
    pipeline.work()
    assert pipeline.queue.failed_job_registry.count == 0
    job = pipeline.queue.fetch_job(f"evt-{event_id}")
    assert job is not None
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value()["result"] == "unknown"  # type: ignore[index]
    assert pipeline.decisions("ffffffffffffffffffffffff") == []


def test_an_api_outage_exhausts_retries_then_replays_cleanly(pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_500=1.0)
    pipeline.submit(sid)
    pipeline.work()
    failed = pipeline.queue.failed_job_registry
    [job_id] = failed.get_job_ids()
    job = pipeline.queue.fetch_job(job_id)
    assert job is not None
    assert job.retries_left == 0  # both RQ retries were spent
    assert "UpstreamUnavailable" in (job.latest_result().exc_string or "")  # type: ignore[union-attr]
    assert pipeline.decisions(sid) == []
    sim.faults()  # ComplyCube is back
    failed.requeue(job_id)
    pipeline.work()
    assert [d.outcome for d in pipeline.decisions(sid)] == ["clear"]


def test_every_delivery_is_on_the_audit_trail(pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(sid, event_id="evt-audit-1")
    pipeline.submit(sid, event_id="evt-audit-1", expect=Submitted.DUPLICATE)  # a redelivery
    pipeline.work()
    events = [
        (r["event_id"], r["disposition"])
        for r in pipeline.runtime.audit.history(sid)
        if r["entry"] == "event"
    ]
    assert sorted(events) == [("evt-audit-1", "accepted"), ("evt-audit-1", "duplicate")]


def test_workers_count_api_calls_decisions_and_actions(pipeline: Pipeline, sim: SimServer) -> None:
    from service.metrics import WORKER

    def value(name: str, labels: dict[str, str]) -> float:
        return WORKER.get_sample_value(name, labels) or 0.0

    before = (value("cubehook_complycube_calls_total", {"status": "200"}),
              value("cubehook_decisions_total", {"kind": "outcome", "outcome": "attention"}),
              value("cubehook_actions_total", {"action": "log", "result": "sent"}),
              value("cubehook_job_seconds_count", {"function": "process_event", "result": "ok"}))  # fmt: skip
    sid = sim.create(preset="attention", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    # The session, then its 3 checks in one list call.
    assert value("cubehook_complycube_calls_total", {"status": "200"}) == before[0] + 2
    assert value("cubehook_decisions_total", {"kind": "outcome", "outcome": "attention"}) == before[1] + 1
    assert value("cubehook_actions_total", {"action": "log", "result": "sent"}) == before[2] + 1
    assert value("cubehook_job_seconds_count", {"function": "process_event", "result": "ok"}) == before[3] + 1


def _api_calls() -> float:
    from service.metrics import WORKER

    return WORKER.get_sample_value("cubehook_complycube_calls_total", {"status": "200"}) or 0.0


def _run_scheduled_now(pipeline: Pipeline, job_id: str) -> None:
    """Move one scheduled job to the queue (as RQ's scheduler does when its time comes)."""
    job = pipeline.queue.fetch_job(job_id)
    assert job is not None
    pipeline.queue.scheduled_job_registry.remove(job)
    pipeline.queue.enqueue_job(job)


def test_an_event_for_a_busy_session_hands_off_and_frees_its_worker(
    pipeline: Pipeline, sim: SimServer
) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    holder = pipeline.runtime.store.acquire_or_hand_off(sid)  # another worker is on this session
    assert isinstance(holder, Lease)
    pipeline.submit(sid)
    pipeline.submit(sid)
    pipeline.work()
    assert [r["result"] for r in pipeline.results()] == ["coalesced", "coalesced"]
    assert pipeline.decisions(sid) == []  # left to the holder
    # One follow-up for the holder's lease, however many jobs handed off to it.
    follow_up = f"follow-up-{sid}-{holder.fence}"
    assert pipeline.queue.scheduled_job_registry.get_job_ids() == [follow_up]
    # The holder takes the request over (its next round fetches after the events): the follow-up
    # then has nothing to do and fetches nothing.
    store = pipeline.runtime.store
    assert store.release_if_idle(holder, store.begin_round(holder))
    fetched = _api_calls()
    _run_scheduled_now(pipeline, follow_up)
    pipeline.work()
    assert _api_calls() == fetched
    assert pipeline.queue.failed_job_registry.get_job_ids() == []
    assert pipeline.queue.fetch_job(follow_up) is None  # no result kept: the id can be used again


def test_a_holder_that_dies_leaves_the_session_to_the_follow_up(pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    holder = pipeline.runtime.store.acquire_or_hand_off(sid)
    assert isinstance(holder, Lease)
    pipeline.submit(sid)
    pipeline.work()
    assert [r["result"] for r in pipeline.results()] == ["coalesced"]
    pipeline.redis.delete(pipeline.runtime.store.key(sid, "lock"))  # the holder's lease lapsed
    _run_scheduled_now(pipeline, f"follow-up-{sid}-{holder.fence}")
    pipeline.work()
    [decision] = pipeline.decisions(sid)
    assert decision.outcome == "rejected"
    assert decision.trigger == "follow-up"


def test_a_running_session_costs_one_api_call(pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="clear", mode="manual")["sessionId"]
    sim.control("POST", f"/_sim/sessions/{sid}/advance")  # processing, its three checks listed
    before = _api_calls()
    pipeline.submit(sid, "workflowSession.processing")
    pipeline.work()
    assert _api_calls() == before + 1  # the session only: its checks cannot decide anything yet
    sim.control("POST", f"/_sim/sessions/{sid}/advance")  # complete
    pipeline.submit(sid)
    pipeline.work()
    assert _api_calls() == before + 1 + 2  # now the session and its three checks, in one list call
    assert [d.outcome for d in pipeline.decisions(sid)] == ["clear"]


def test_a_decisions_actions_go_ahead_of_waiting_events(pipeline: Pipeline, sim: SimServer) -> None:
    first, second = (sim.create(preset="clear", mode="settled")["sessionId"] for _ in range(2))
    pipeline.submit(first)
    waiting = pipeline.submit(second)
    SimpleWorker([pipeline.queue], connection=pipeline.redis, **JOB_OPTIONS).work(burst=True, max_jobs=1)
    [decision] = pipeline.decisions(first)
    queued = pipeline.queue.get_job_ids()
    assert queued == [f"act-{decision.decision_id}-log", f"evt-{waiting}"]


def test_every_key_a_session_leaves_in_redis_expires(pipeline: Pipeline, sim: SimServer) -> None:
    """Redis stays bounded: after a decided session and its action, every key cubehook or RQ left
    either expires or is one of a fixed few (queues and registries, whose entries expire)."""
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    pipeline.submit(sid, "workflowSession.started")
    pipeline.submit(sid)
    pipeline.work()
    redis = pipeline.redis
    assert [d.outcome for d in pipeline.decisions(sid)] == ["rejected"]
    fixed = {
        "rq:queues", "rq:workers", "rq:workers:cubehook", "cubehook:last_event_at", "cubehook:ratelimit:pause",
    }  # fmt: skip
    forever = sorted(
        name
        for key in redis.keys("*")
        if redis.ttl(key) == -1
        and (name := text(key)) not in fixed
        and not name.startswith(("rq:wip:", "rq:finished:", "rq:failed:", "rq:scheduled:", "rq:registry:"))
        and not name.startswith(("rq:queue:", "rq:worker:", "rq:executions:", "rq:results:"))
    )
    assert forever == []
    state_ttl = pipeline.settings.session_state_ttl_seconds
    for key in redis.keys(f"cubehook:session:{sid}:*") + redis.keys("cubehook:check:*"):
        assert 0 < redis.ttl(key) <= state_ttl + 86400, key
    assert 0 < redis.ttl(f"cubehook:session:{sid}:state") <= state_ttl
    for job_id in pipeline.queue.finished_job_registry.get_job_ids():
        assert 0 < redis.ttl(f"rq:job:{job_id}") <= pipeline.settings.result_ttl_seconds, job_id


def test_a_session_whose_redis_state_expired_is_recalled_from_the_audit_trail(
    pipeline: Pipeline, sim: SimServer
) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    [first] = pipeline.decisions(sid)
    actions_before = pipeline.queue.finished_job_registry.count
    pipeline.redis.delete(*pipeline.redis.keys(f"cubehook:session:{sid}:*"))  # as after its TTL
    pipeline.submit(sid)  # a late event, the same state
    pipeline.work()
    assert pipeline.results()[-1]["result"] in ("unchanged", "covered")
    assert pipeline.runtime.audit.latest_decision(sid) == first  # no second decision...
    assert (
        pipeline.queue.finished_job_registry.count == actions_before + 1
    )  # ...nor action: the event's job only
    assert pipeline.runtime.store.current(sid) == first  # Redis holds it again
