from __future__ import annotations

import pytest

from service.complycube_models import Check, WorkflowSession
from workers.decide import Decision, Kind, Step, judge, make_decision
from workers.reconcile import Outcome, Reconciliation, reconcile


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


@pytest.mark.parametrize("status", ["started", "processing", "paused"])
def test_unfinished_sessions_only_record_progress(status: str) -> None:
    assert judge(rec(status, None), None, 60) == (Step.PROGRESS, None)


@pytest.mark.parametrize("status", ["abandoned", "cancelled"])
def test_abandoned_and_cancelled_are_terminal_without_outcome(status: str) -> None:
    step, verdict = judge(rec(status, None), None, 60)
    assert step is Step.DECIDE
    assert verdict is not None
    assert (verdict.kind, verdict.outcome) == (Kind.TERMINAL, None)


def test_complete_decides_its_final_outcome() -> None:
    step, verdict = judge(rec(checks={"c0": "rejected"}), None, 60)
    assert step is Step.DECIDE
    assert verdict is not None
    assert (verdict.kind, verdict.outcome) == (Kind.OUTCOME, Outcome.REJECTED)
    assert verdict.reasons == ("session says clear, its checks say rejected",)


def test_agreement_is_stated_as_the_reason() -> None:
    _, verdict = judge(rec(), None, 60)
    assert verdict is not None
    assert verdict.reasons == ("session and checks agree: clear",)


def test_pending_checks_wait_then_become_attention() -> None:
    pending = rec(checks={"c0": "clear", "c1": None})
    assert judge(pending, 0.0, 60) == (Step.WAIT, None)
    assert judge(pending, 59.9, 60) == (Step.WAIT, None)
    step, verdict = judge(pending, 60.0, 60)
    assert step is Step.DECIDE
    assert verdict is not None
    assert verdict.outcome is Outcome.ATTENTION
    assert verdict.reasons[-1] == "checks still pending after 60 s: c1"


def test_pending_never_lowers_a_rejection() -> None:
    _, verdict = judge(rec(checks={"c0": "rejected", "c1": None}), 100.0, 60)
    assert verdict is not None
    assert verdict.outcome is Outcome.REJECTED


def test_decision_document_round_trips() -> None:
    r = rec(checks={"c0": "rejected"})
    _, verdict = judge(r, None, 60)
    assert verdict is not None
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
