from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from service.complycube_models import Check, WorkflowSession
from workers.judging.judge import (
    Decide,
    Decision,
    Kind,
    Progress,
    RecheckSchedule,
    Verdict,
    Wait,
    judge,
    make_decision,
)
from workers.judging.reconcile import Outcome, Reconciliation, Status, reconcile


def rec(
    status: str = "complete", outcome: str | None = "clear", checks: dict[str, str | None] | None = None
) -> Reconciliation:
    checks = {"c0": "clear"} if checks is None else checks
    doc = {"id": "s1", "status": status, "outcome": outcome,
           "allRelatedChecks": [{"checkId": cid} for cid in checks]}  # fmt: skip
    models = {
        cid: Check.model_validate(
            {"id": cid, "status": "pending"}
            if o is None
            else {"id": cid, "status": "complete", "result": {"outcome": o}}
        )
        for cid, o in checks.items()
    }
    return reconcile(WorkflowSession.model_validate(doc), models)


MINUTE = RecheckSchedule.after([60])  # one re-check, a minute after first seen pending


def decided(judgement: object) -> Verdict:
    assert isinstance(judgement, Decide), judgement
    return judgement.verdict


@pytest.mark.parametrize(("status", "seen"), [("started", Status.STARTED), ("processing", Status.PROCESSING),
                                              ("paused", Status.UNKNOWN)])  # fmt: skip
def test_unfinished_sessions_only_record_progress(status: str, seen: Status) -> None:
    assert judge(rec(status, None), 0.0, MINUTE) == Progress(seen)


@pytest.mark.parametrize("status", ["abandoned", "cancelled"])
def test_abandoned_and_cancelled_are_terminal_without_outcome(status: str) -> None:
    verdict = decided(judge(rec(status, None), 0.0, MINUTE))
    assert (verdict.kind, verdict.outcome, verdict.reasons) == (Kind.TERMINAL, None, (f"session {status}",))


def test_complete_decides_its_final_outcome() -> None:
    verdict = decided(judge(rec(checks={"c0": "rejected"}), 0.0, MINUTE))
    assert (verdict.kind, verdict.outcome) == (Kind.OUTCOME, Outcome.REJECTED)
    assert verdict.reasons == ("session says clear, its checks say rejected",)


def test_agreement_is_stated_as_the_reason() -> None:
    assert decided(judge(rec(), 0.0, MINUTE)).reasons == ("session and checks agree: clear",)


def test_pending_checks_wait_for_the_next_point_then_become_attention() -> None:
    pending = rec(checks={"c0": "clear", "c1": None})
    assert judge(pending, 0.0, MINUTE) == Wait(recheck=1, delay=60.0)
    assert judge(pending, 59.5, MINUTE) == Wait(recheck=1, delay=0.5)
    verdict = decided(judge(pending, 60.0, MINUTE))
    assert verdict.outcome is Outcome.ATTENTION
    assert verdict.reasons[-1] == "checks still pending after 60 s: c1"


def test_pending_never_lowers_a_rejection() -> None:
    assert (
        decided(judge(rec(checks={"c0": "rejected", "c1": None}), 100.0, MINUTE)).outcome is Outcome.REJECTED
    )


def test_without_a_schedule_pending_checks_are_decided_at_once() -> None:
    verdict = decided(judge(rec(checks={"c0": None}), 0.0, RecheckSchedule.after([])))
    assert verdict.outcome is Outcome.ATTENTION


def test_the_schedule_is_the_intervals_accumulated() -> None:
    schedule = RecheckSchedule.after([30, 120, 600])
    assert schedule.points == (30, 150, 750)
    assert schedule.spent_at == 750
    assert [schedule.next_look(w) for w in (0, 30, 149, 150)] == [
        Wait(1, 30.0),
        Wait(2, 120.0),
        Wait(2, 1.0),
        Wait(3, 600.0),
    ]
    assert schedule.trigger(2) == "recheck-2"


def test_a_recheck_stands_for_its_point_reached_even_a_little_early() -> None:
    schedule = RecheckSchedule.after([30, 120])
    assert schedule.waited(29.4, "recheck-1") == 30.0  # RQ's scheduler ran it 0.6 s early
    assert schedule.waited(200.0, "recheck-1") == 200.0  # never less than seen
    assert schedule.waited(29.4, "evt-123") == 29.4  # other triggers: as seen
    assert schedule.waited(29.4, "recheck-9") == 29.4  # no such point
    assert schedule.waited(29.4, "recheck-x") == 29.4


def test_decision_document_round_trips() -> None:
    r = rec(checks={"c0": "rejected"})
    verdict = decided(judge(r, 0.0, MINUTE))
    decision = make_decision(
        r, verdict, decision_id="dec_1", supersedes="dec_0", decided_at="t", trigger="evt1"
    )
    assert decision.outcome == "rejected"
    assert decision.derived_outcome == "rejected"
    assert decision.session_outcome == "clear"
    assert decision.needs_review
    assert decision.checks == (
        {"check_id": "c0", "type": None, "status": "complete", "outcome": "rejected", "findings": []},
    )
    assert Decision.from_dict(decision.to_dict()) == decision


def test_the_last_point_of_the_schedule_stands_for_itself_too() -> None:
    schedule = RecheckSchedule.after([30, 120])
    assert schedule.waited(149.4, "recheck-2") == 150.0
    assert schedule.waited(0.0, "recheck-0") == 0.0  # points count from 1


def test_a_schedule_without_points_is_spent_at_once() -> None:
    assert RecheckSchedule.after([]).spent_at == 0
    assert RecheckSchedule.after([]).points == ()


def test_a_discrepancy_about_a_check_names_the_check_in_the_reasons() -> None:
    r = rec(checks={"c0": "clear", "c1": "surprise"})
    assert decided(judge(r, 0.0, MINUTE)).reasons == (
        "c1: check outcome 'surprise' read as attention",
        "session says clear, its checks say attention",
    )


def test_every_pending_check_is_named_once_the_schedule_is_spent() -> None:
    r = rec(checks={"c0": None, "c1": "clear", "c2": None})
    verdict = decided(judge(r, 61.9, MINUTE))
    assert verdict.reasons == ("checks still pending after 61 s: c0, c2",)
    verdict = decided(judge(r, float("inf"), MINUTE))  # the pipeline's "give up now"
    assert verdict.reasons == ("checks still pending after the whole re-check schedule: c0, c2",)


@pytest.mark.parametrize(
    ("checks", "outcome"),
    [({"c0": "clear"}, Outcome.CLEAR), ({"c0": "attention"}, Outcome.ATTENTION),
     ({"c0": "rejected"}, Outcome.REJECTED), ({"c0": "match_confirmed"}, Outcome.REJECTED)],
)  # fmt: skip
def test_pending_checks_once_spent_make_at_least_attention(
    checks: dict[str, str | None], outcome: Outcome
) -> None:
    waiting = rec(outcome=outcome.label, checks={**checks, "late": None})
    assert decided(judge(waiting, 60.0, MINUTE)).outcome is max(outcome, Outcome.ATTENTION)


DOCUMENT = {"id": "s1", "clientId": "cl1", "workflowTemplateId": "t1", "status": "complete", "outcome": "clear",
            "allRelatedChecks": [{"checkId": "c0", "type": "document_check"}, {"checkId": "c1", "type": "identity_check"}]}  # fmt: skip


def decision_of(
    session: dict[str, Any], checks: dict[str, dict[str, Any] | None], waited: float = 0.0
) -> Decision:
    r = reconcile(
        WorkflowSession.model_validate(session),
        {
            cid: None if doc is None else Check.model_validate({"id": cid, **doc})
            for cid, doc in checks.items()
        },
    )
    return make_decision(r, decided(judge(r, waited, MINUTE)), decision_id="dec_2", supersedes="dec_1",
                         decided_at="2025-01-13T11:40:00.000Z", trigger="evt_9")  # fmt: skip


def test_the_decision_document_says_everything_decided() -> None:
    decision = decision_of(
        DOCUMENT, {"c0": {"status": "complete", "result": {"outcome": "clear"}}, "c1": None}
    )
    assert decision.to_dict() == {
        "decision_id": "dec_2",
        "session_id": "s1",
        "client_id": "cl1",
        "template_id": "t1",
        "status": "complete",
        "kind": Kind.OUTCOME,
        "outcome": "attention",
        "session_outcome": "clear",
        "derived_outcome": "attention",
        "needs_review": True,
        "reasons": (
            "c1: listed by the session, not found by the API",
            "session says clear, its checks say attention",
        ),
        "discrepancies": (
            {
                "issue": "check_missing",
                "detail": "listed by the session, not found by the API",
                "check_id": "c1",
            },
            {
                "issue": "outcomes_disagree",
                "detail": "session says clear, its checks say attention",
                "check_id": None,
            },
        ),
        "checks": (
            {
                "check_id": "c0",
                "type": "document_check",
                "status": "complete",
                "outcome": "clear",
                "findings": [],
            },
            {
                "check_id": "c1",
                "type": "identity_check",
                "status": "missing",
                "outcome": None,
                "findings": [],
            },
        ),
        "fingerprint": reconcile(
            WorkflowSession.model_validate(DOCUMENT),
            {
                "c0": Check.model_validate(
                    {"id": "c0", "status": "complete", "result": {"outcome": "clear"}}
                ),
                "c1": None,
            },
        ).fingerprint,
        "supersedes": "dec_1",
        "decided_at": "2025-01-13T11:40:00.000Z",
        "trigger": "evt_9",
        "decided_by": None,  # cubehook decided, not a person
    }


def test_a_terminal_decision_has_no_outcomes() -> None:
    done = {"status": "complete", "result": {"outcome": "clear"}}
    decision = decision_of({**DOCUMENT, "status": "abandoned", "outcome": None}, {"c0": done, "c1": done})
    assert (decision.kind, decision.status, decision.outcome) == (Kind.TERMINAL, "abandoned", None)
    assert (decision.session_outcome, decision.derived_outcome) == (None, "clear")
    assert decision.reasons == ("session abandoned",)
    assert not decision.needs_review


def test_checks_that_never_finished_need_review_even_without_a_discrepancy() -> None:
    done = {"status": "complete", "result": {"outcome": "clear"}}
    decision = decision_of(DOCUMENT, {"c0": done, "c1": {"status": "pending"}}, waited=60.0)
    assert decision.discrepancies == ()
    assert (decision.outcome, decision.needs_review) == ("attention", True)
    assert not decision_of(DOCUMENT, {"c0": done, "c1": done}).needs_review


@hypothesis_settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(intervals=st.lists(st.integers(min_value=1, max_value=3600), max_size=6), early=st.floats(0.0, 0.99))
def test_following_the_schedule_looks_once_at_each_point_then_decides(
    intervals: list[int], early: float
) -> None:
    """The pipeline's loop: look, wait as told, look again with the trigger of that point (RQ may
    run it up to a second early). It decides after exactly one look per point, at the last one."""
    schedule = RecheckSchedule.after(intervals)
    pending = rec(checks={"c0": "clear", "c1": None})
    seen, trigger, looks = 0.0, "evt_1", []
    while not isinstance(judgement := judge(pending, schedule.waited(seen, trigger), schedule), Decide):
        assert isinstance(judgement, Wait)
        assert judgement.delay > 0
        looks.append(judgement.recheck)
        seen = seen + judgement.delay - early
        trigger = schedule.trigger(judgement.recheck)
    assert looks == list(range(1, len(intervals) + 1))
    assert judgement.verdict.outcome is Outcome.ATTENTION
    assert judgement.verdict.reasons == (f"checks still pending after {sum(intervals)} s: c1",)
