"""Events that cannot decide by themselves are looked at later, when their session's own final
event has covered them: through a real RQ worker, calls counted at the simulator."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from click.testing import CliRunner

from cubehook_cli import main
from service.events import format_time
from service.queue import accepted_at
from service.settings import Settings
from tests.conftest import SimServer
from tests.jobs.conftest import Pipeline
from workers.sessions import HandedOff, Lease
from workers.triggers import says_running


@pytest.fixture
def worker_settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(update={"event_defer_seconds": 20})


def run_later_jobs_now(pipeline: Pipeline) -> list[str]:
    """Move every scheduled job to the queue (as RQ's scheduler does when their time comes), work."""
    queue = pipeline.queue
    moved: list[str] = queue.scheduled_job_registry.get_job_ids()
    for job_id in moved:
        job = queue.fetch_job(job_id)
        assert job is not None
        queue.scheduled_job_registry.remove(job)
        queue.enqueue_job(job)
    pipeline.work()
    return moved


def calls(sim: SimServer) -> int:
    return sum(sim.simulator.calls.values())


def every_webhook(pipeline: Pipeline, sim: SimServer, sid: str) -> None:
    """What ComplyCube sends for a session, in its order: started, processing, each check, completed."""
    pipeline.submit(sid, "workflowSession.started")
    pipeline.submit(sid, "workflowSession.processing")
    for ref in sim.session(sid)["allRelatedChecks"]:
        pipeline.submit(ref["checkId"], "check.completed")
    pipeline.submit(sid, "workflowSession.completed")


def test_a_sessions_webhooks_together_cost_two_calls(pipeline: Pipeline, sim: SimServer) -> None:
    sessions = [sim.create(preset=p, mode="settled")["sessionId"] for p in ("clear", "rejected", "attention")]
    for sid in sessions:
        every_webhook(pipeline, sim, sid)
    before = calls(sim)
    pipeline.work()
    assert sorted(r["result"] for r in pipeline.results()) == ["decided"] * 3 + ["deferred"] * 15
    later = run_later_jobs_now(pipeline)
    assert len(later) == 15
    assert Counter(r["result"] for r in pipeline.results()) == {"decided": 3, "deferred": 15, "covered": 15}
    assert calls(sim) - before == 2 * 3  # the completed events' looks, and nothing else
    assert [len(pipeline.decisions(sid)) for sid in sessions] == [1, 1, 1]
    assert pipeline.queue.scheduled_job_registry.get_job_ids() == []  # nothing put back twice


def test_a_check_event_alone_still_gets_its_session_decided(pipeline: Pipeline, sim: SimServer) -> None:
    """Every session event lost: the check's event, looked at later, finds and decides the session."""
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    check_id = sim.session(sid)["allRelatedChecks"][0]["checkId"]
    before = calls(sim)
    pipeline.submit(check_id, "check.completed.rejected")
    pipeline.work()
    assert calls(sim) == before  # put back without a call
    assert pipeline.decisions(sid) == []
    run_later_jobs_now(pipeline)
    assert [d.outcome for d in pipeline.decisions(sid)] == ["rejected"]


@pytest.mark.parametrize(
    ("preset", "check", "outcome", "decided", "scheduled"),
    [
        ("clear", 2, "rejected", ["clear", "rejected"], []),  # a re-validation of a decided session
        ("pending_check", 1, "clear", ["clear"], ["recheck-{sid}-1"]),  # the check a session waits for
    ],
)
def test_a_check_event_that_can_change_a_decision_is_looked_at_at_once(
    pipeline: Pipeline,
    sim: SimServer,
    preset: str,
    check: int,
    outcome: str,
    decided: list[str],
    scheduled: list[str],
) -> None:
    sid = sim.create(preset=preset, mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    check_id = sim.session(sid)["allRelatedChecks"][check]["checkId"]
    sim.control("POST", f"/_sim/checks/{check_id}", json={"outcome": outcome})
    pipeline.submit(check_id, f"check.completed.{outcome}")
    pipeline.work()
    assert [d.outcome for d in pipeline.decisions(sid)] == decided
    # Nothing put back for later: only the re-check a waiting session had already.
    assert pipeline.queue.scheduled_job_registry.get_job_ids() == [s.format(sid=sid) for s in scheduled]


@pytest.mark.parametrize(
    ("event_type", "running"),
    [
        ("workflowSession.started", True),
        ("workflow.session.processing", True),
        ("WORKFLOW_SESSION_STARTED", True),
        ("workflow-session-processing", True),
        ("workflowSession.completed", False),
        ("workflow.session.updated", False),
        ("workflowSession.cancelled", False),
        ("something.new", False),
    ],
)
def test_which_session_events_say_the_session_is_running(event_type: str, running: bool) -> None:
    assert says_running(event_type) is running


@pytest.mark.parametrize("newer", [False, True], ids=["mark-before-the-look", "mark-after-the-look"])
def test_a_covered_job_answers_the_requests_left_while_it_held_the_session(
    pipeline: Pipeline, sim: SimServer, newer: bool
) -> None:
    """A job that found the session busy left a request; the holder was a job whose event a look
    had covered. Letting go, that job answers the request if the look covers it too, else looks."""
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    covered_event, busy_event = pipeline.submit(sid), pipeline.submit(sid)
    store, processor = pipeline.runtime.store, pipeline.runtime.processor
    processor.process(sid, trigger="resync")  # the look: it began after both events
    other = store.acquire_or_hand_off(sid)  # someone holds the session...
    asked = None if newer else accepted_at(pipeline.redis, busy_event)
    assert isinstance(store.acquire_or_hand_off(sid, asked), HandedOff)  # ...so a request is left
    assert isinstance(other, Lease)
    store.release(other)
    before = calls(sim)
    outcome = processor.process(
        sid, trigger=covered_event, asked_at=accepted_at(pipeline.redis, covered_event)
    )
    assert not store.requested(sid)  # no follow-up will look again
    assert outcome.result == ("unchanged" if newer else "covered")
    assert calls(sim) - before == (2 if newer else 0)


def test_history_says_which_events_wait_and_until_when(
    pipeline: Pipeline, sim: SimServer, worker_settings: Settings
) -> None:
    """Right after a session's webhooks, its record shows the completed event and the decision; the
    events deferred are not on record yet, and `cubehook history` says so, with their time."""
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    every_webhook(pipeline, sim, sid)
    pipeline.work()
    env = {
        "CUBEHOOK_REDIS_URL": worker_settings.redis_url,
        "CUBEHOOK_DATABASE_URL": worker_settings.database_url,
    }
    told = CliRunner(env=env).invoke(main, ["history", sid])
    assert told.exit_code == 0, told.output
    waiting = [line for line in told.output.splitlines() if line.startswith("waiting ")]
    scheduled = pipeline.queue.scheduled_job_registry
    due = {format_time(scheduled.get_scheduled_time(job_id)) for job_id in scheduled.get_job_ids()}
    assert len(waiting) == 2 + len(sim.session(sid)["allRelatedChecks"])  # started, processing, checks
    for line in waiting:
        until = re.search(r": deferred until (\S+), when the session's own later events", line)
        assert until is not None, line
        assert until.group(1) in due
    assert any(" workflowSession.started: deferred until " in line for line in waiting)
    run_later_jobs_now(pipeline)
    after = CliRunner(env=env).invoke(main, ["history", sid]).output
    assert "waiting " not in after
