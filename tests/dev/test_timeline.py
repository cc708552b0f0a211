"""The demo's lines in the order of events: a decision before the actions it caused, whatever
order the sources bring them in."""

from __future__ import annotations

from cubehook_dev.timeline import PATIENCE, Line, Story, delivery_line, job_line

DECIDED = {"result": "decided", "session_id": "s1", "outcome": "rejected", "decision_id": "dec_1"}


def action(name: str, at: float) -> Line:
    line = job_line(
        "workers.jobs.run_action", {"decision_id": "dec_1", "action": name}, {"detail": "ok"}, None, at
    )
    assert line is not None
    return line


def decision(at: float) -> Line:
    line = job_line(
        "workers.jobs.process_event", {"event_type": "workflow.session.completed"}, DECIDED, None, at
    )
    assert line is not None
    return line


def test_an_action_waits_for_its_decision_even_when_it_comes_first() -> None:
    story = Story()
    assert story.tell([action("log", 2.0)]) == []  # its decision has not been read yet
    assert story.tell([decision(1.0), action("onboarding", 3.0)]) == [
        "worker: workflow.session.completed -> session s1 decided rejected (dec_1)",
        "  then log: ok",
        "  then onboarding: ok",
    ]


def test_lines_are_told_earliest_first() -> None:
    story = Story()
    webhook = delivery_line({"at": 0.5, "type": "workflow.session.completed", "resourceId": "s1",
                             "eventId": "e1", "outcome": "202"})  # fmt: skip
    assert story.tell([decision(1.0), webhook]) == [
        "webhook workflow.session.completed for s1 -> 202",
        "worker: workflow.session.completed -> session s1 decided rejected (dec_1)",
    ]


def test_an_action_whose_decision_never_shows_is_told_in_the_end() -> None:
    story = Story()  # e.g. a decision made by `cubehook resync`, outside any job
    told = [story.tell([action("log", 1.0)] if n == 0 else []) for n in range(PATIENCE + 1)]
    assert told[:-1] == [[]] * PATIENCE
    assert told[-1] == ["  then log: ok"]


def test_steps_are_not_news_but_failures_and_unknown_sessions_are() -> None:
    event = {"event_type": "check.completed"}
    assert job_line("workers.jobs.process_event", event, {"result": "deferred"}, None, 1.0) is None
    assert job_line("workers.jobs.record_event", event, {}, None, 1.0) is None
    failed = job_line("workers.jobs.process_event", event, None, "UpstreamUnavailable: HTTP 503", 1.0)
    assert failed is not None
    assert failed.text == "worker: check.completed -> failed: UpstreamUnavailable: HTTP 503"
    unknown = job_line(
        "workers.jobs.process_event", event, {"result": "unknown", "session_id": "sess1"}, None, 1.0
    )
    assert unknown is not None
    assert (
        unknown.text
        == "worker: check.completed -> ComplyCube's API does not know session sess1: recorded, nothing decided"
    )
