from __future__ import annotations

import pytest

from service.complycube_models import Check, WorkflowSession
from workers.decide import (
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
from workers.reconcile import Outcome, Reconciliation, Status, reconcile


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
