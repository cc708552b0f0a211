"""reconcile() over every outcome combination, the fixtures and unknown vocabulary."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from service.complycube_models import Check, WorkflowSession
from tests.conftest import FIXTURES, fixture_bytes
from workers.judging.reconcile import Discrepancy, Issue, Outcome, Status, needs_checks, reconcile

SESSION = json.loads((FIXTURES / "workflow-session-complete.json").read_text())
CHECK_FIXTURES = {
    name: json.loads((FIXTURES / f"{name}.json").read_text())
    for name in ("check-document-rejected", "check-pending", "check-screening-clear")
}


def session(outcome: str | None = "clear", status: str = "complete", n_checks: int = 3) -> WorkflowSession:
    doc: dict[str, Any] = dict(SESSION, status=status)
    doc["allRelatedChecks"] = [{"checkId": f"c{i}", "type": "document_check"} for i in range(n_checks)]
    if outcome is None:
        doc.pop("outcome")
    else:
        doc["outcome"] = outcome
    return WorkflowSession.model_validate(doc)


def check(check_id: str, outcome: str | None, status: str = "complete") -> Check:
    doc: dict[str, Any] = {"id": check_id, "type": "document_check", "status": status}
    if outcome is not None:
        doc["result"] = {"outcome": outcome}
    return Check.model_validate(doc)


def issues(rec: Any) -> set[Issue]:
    return {d.issue for d in rec.discrepancies}


def test_the_fixtures_reconcile() -> None:
    fixture_session = WorkflowSession.model_validate(SESSION)
    checks = {c["id"]: Check.model_validate(c) for c in CHECK_FIXTURES.values()}
    rec = reconcile(fixture_session, checks)
    assert rec.status is Status.COMPLETE
    assert rec.session_outcome is Outcome.CLEAR
    assert rec.derived_outcome is Outcome.REJECTED  # the document check was rejected
    assert rec.final_outcome is Outcome.REJECTED  # the stricter of the two
    assert rec.pending == ("689c78f619987c0002774922",)  # the liveness check is still pending
    assert issues(rec) == {Issue.OUTCOMES_DISAGREE}
    assert rec.needs_review


# Spelled out, not read from CHECK_OUTCOMES: a test that iterates the table it tests cannot see an
# entry deleted from it.
CHECK_VALUES = ["clear", "attention", "rejected", "match_confirmed", "not_processed", "surprise"]
SESSION_VALUES = ["clear", "attention", "rejected", "review", "decline", "mystery"]
EXPECTED_CHECK = {
    "clear": 0,
    "attention": 1,
    "rejected": 2,
    "match_confirmed": 2,
    "not_processed": 1,
    "surprise": 1,
}
EXPECTED_SESSION = {"clear": 0, "attention": 1, "rejected": 2, "review": 1, "decline": 2, "mystery": 1}


@pytest.mark.parametrize("session_outcome", SESSION_VALUES)
@pytest.mark.parametrize("pair", list(itertools.combinations_with_replacement(CHECK_VALUES, 2)))
def test_every_combination(session_outcome: str, pair: tuple[str, str]) -> None:
    rec = reconcile(
        session(session_outcome, n_checks=2), {"c0": check("c0", pair[0]), "c1": check("c1", pair[1])}
    )
    derived = max(EXPECTED_CHECK[o] for o in pair)
    said = EXPECTED_SESSION[session_outcome]
    assert rec.derived_outcome == Outcome(derived)
    assert rec.session_outcome == Outcome(said)
    assert rec.final_outcome == Outcome(max(derived, said))
    assert (Issue.OUTCOMES_DISAGREE in issues(rec)) == (derived != said)
    assert (Issue.UNKNOWN_CHECK_OUTCOME in issues(rec)) == ("surprise" in pair)
    assert (Issue.UNKNOWN_SESSION_OUTCOME in issues(rec)) == (session_outcome == "mystery")
    assert (Issue.LEGACY_VOCABULARY in issues(rec)) == (session_outcome in ("review", "decline"))
    assert rec.needs_review == bool(rec.discrepancies)
    assert rec.pending == ()


def test_session_clear_but_a_check_rejected_is_rejected_and_flagged() -> None:
    rec = reconcile(session("clear", n_checks=2), {"c0": check("c0", "clear"), "c1": check("c1", "rejected")})
    assert rec.final_outcome is Outcome.REJECTED
    assert [d.detail for d in rec.discrepancies] == ["session says clear, its checks say rejected"]


def test_a_listed_check_the_api_does_not_know_is_attention() -> None:
    rec = reconcile(session("clear", n_checks=2), {"c0": check("c0", "clear"), "c1": None})
    assert rec.final_outcome is Outcome.ATTENTION
    assert Issue.CHECK_MISSING in issues(rec)
    assert rec.checks[1].status == "missing"


@pytest.mark.parametrize(
    ("status", "outcome", "issue"),
    [("failed", None, Issue.CHECK_FAILED), ("weird", "clear", Issue.UNKNOWN_CHECK_STATUS),
     ("complete", None, Issue.CHECK_WITHOUT_RESULT)],
)  # fmt: skip
def test_checks_that_did_not_finish_properly_need_attention(
    status: str, outcome: str | None, issue: Issue
) -> None:
    rec = reconcile(session("clear", n_checks=1), {"c0": check("c0", outcome, status=status)})
    assert rec.final_outcome is Outcome.ATTENTION
    assert issue in issues(rec)


def test_pending_checks_are_reported_and_do_not_count_yet() -> None:
    rec = reconcile(
        session("clear", n_checks=2), {"c0": check("c0", "clear"), "c1": check("c1", None, "pending")}
    )
    assert rec.pending == ("c1",)
    assert rec.derived_outcome is Outcome.CLEAR
    assert rec.final_outcome is Outcome.CLEAR


def test_complete_without_outcome_needs_attention() -> None:
    rec = reconcile(session(None, n_checks=1), {"c0": check("c0", "clear")})
    assert rec.final_outcome is Outcome.ATTENTION
    assert rec.discrepancies == (
        Discrepancy(Issue.SESSION_WITHOUT_OUTCOME, "complete session without an outcome"),
        Discrepancy(Issue.OUTCOMES_DISAGREE, "session says attention, its checks say clear"),
    )


def test_a_session_without_checks_takes_its_own_outcome() -> None:
    rec = reconcile(session("attention", n_checks=0), {})
    assert (rec.derived_outcome, rec.final_outcome) == (None, Outcome.ATTENTION)
    assert rec.discrepancies == ()


@pytest.mark.parametrize(
    ("status", "expected"),
    [("started", Status.STARTED), ("processing", Status.PROCESSING), ("abandoned", Status.ABANDONED),
     ("cancelled", Status.CANCELLED), ("paused", Status.UNKNOWN)],
)  # fmt: skip
def test_sessions_not_complete_have_no_final_outcome(status: str, expected: Status) -> None:
    rec = reconcile(session(None, status=status, n_checks=1), {"c0": check("c0", None, "pending")})
    assert rec.status is expected
    assert rec.final_outcome is None
    assert (Issue.UNKNOWN_SESSION_STATUS in issues(rec)) == (expected is Status.UNKNOWN)


def test_fingerprint_follows_state_not_time() -> None:
    checks = {"c0": check("c0", "clear")}
    base = reconcile(session("clear", n_checks=1), checks).fingerprint
    later = session("clear", n_checks=1).model_copy(update={"updated_at": "2030-01-01T00:00:00Z"})
    assert reconcile(later, checks).fingerprint == base
    assert reconcile(session("clear", n_checks=1), {"c0": check("c0", "rejected")}).fingerprint != base
    assert reconcile(session("rejected", n_checks=1), checks).fingerprint != base


def test_result_is_frozen() -> None:
    rec = reconcile(session("clear", n_checks=0), {})
    with pytest.raises(AttributeError):
        rec.final_outcome = Outcome.REJECTED  # type: ignore[misc]


def test_findings_name_the_failed_parts_of_the_breakdown_and_no_personal_data() -> None:
    rejected = Check.model_validate(CHECK_FIXTURES["check-document-rejected"])
    doc = dict(CHECK_FIXTURES["check-document-rejected"])
    breakdown = dict(doc["result"]["breakdown"], extractedData={"firstName": "John", "dob": "1990-01-01"})
    doc["result"] = {"outcome": "rejected", "breakdown": breakdown}
    fixture_session = WorkflowSession.model_validate(SESSION)
    rec = reconcile(fixture_session, {rejected.id: Check.model_validate(doc)})
    view = next(v for v in rec.checks if v.check_id == rejected.id)
    assert view.findings == (
        "formatAnalysis.documentNumberFormat: rejected",
        "dataValidation.expiryDate: rejected",
    )


def test_a_running_session_is_looked_at_without_its_checks() -> None:
    running = session(status="processing", outcome=None)
    assert not needs_checks(running)
    rec = reconcile(running, {})  # nothing fetched
    assert rec.status is Status.PROCESSING
    assert rec.discrepancies == ()  # not fetched is not missing
    assert rec.pending == tuple(ref.check_id for ref in running.all_related_checks)
    assert needs_checks(session(status="complete"))
    assert needs_checks(session(status="abandoned", outcome=None))
    assert needs_checks(session(status="something-new", outcome=None))  # unknown: look at everything


def test_what_the_document_says_about_the_person_is_never_a_finding() -> None:
    """ComplyCube's sandbox gives the attention outcome to clients named "attention": that name,
    read off the document into extractedData, must not come out as a finding (nor in alerts)."""
    raw = json.loads(fixture_bytes("check-document-rejected.json"))
    raw["result"]["breakdown"]["extractedData"] = {"firstName": "Ben", "lastName": "attention"}
    session = WorkflowSession.model_validate_json(fixture_bytes("workflow-session-complete.json"))
    checks = {ref.check_id: None for ref in session.all_related_checks} | {
        raw["id"]: Check.model_validate(raw)
    }
    [document] = [view for view in reconcile(session, checks).checks if view.check_id == raw["id"]]
    assert document.findings == (
        "formatAnalysis.documentNumberFormat: rejected",
        "dataValidation.expiryDate: rejected",
    )


# ComplyCube's words, each with the outcome cubehook reads it as. Every word of the vocabularies is
# listed here by hand, so a word dropped from (or remapped in) reconcile's tables fails a row.
@pytest.mark.parametrize(
    ("word", "outcome", "issue"),
    [
        ("clear", Outcome.CLEAR, None),
        ("attention", Outcome.ATTENTION, None),
        ("rejected", Outcome.REJECTED, None),
        ("match_confirmed", Outcome.REJECTED, None),  # a confirmed screening match is a rejection
        ("not_processed", Outcome.ATTENTION, None),  # the check could not run: a person looks
        ("review", Outcome.ATTENTION, Issue.UNKNOWN_CHECK_OUTCOME),  # session words only
        ("decline", Outcome.ATTENTION, Issue.UNKNOWN_CHECK_OUTCOME),
        ("Clear", Outcome.ATTENTION, Issue.UNKNOWN_CHECK_OUTCOME),  # compared as sent
    ],
)
def test_each_check_outcome_word(word: str, outcome: Outcome, issue: Issue | None) -> None:
    rec = reconcile(session(outcome.label, n_checks=1), {"c0": check("c0", word)})
    assert rec.checks[0].outcome is outcome
    assert rec.derived_outcome is outcome
    expected = (
        () if issue is None else (Discrepancy(issue, f"check outcome {word!r} read as attention", "c0"),)
    )
    assert rec.discrepancies == expected


@pytest.mark.parametrize(
    ("word", "outcome", "legacy"),
    [
        ("clear", Outcome.CLEAR, False),
        ("attention", Outcome.ATTENTION, False),
        ("rejected", Outcome.REJECTED, False),
        ("review", Outcome.ATTENTION, True),  # the Python SDK's words, read and flagged
        ("decline", Outcome.REJECTED, True),
    ],
)
def test_each_session_outcome_word(word: str, outcome: Outcome, legacy: bool) -> None:
    rec = reconcile(session(word, n_checks=0), {})
    assert rec.session_outcome is outcome
    assert rec.final_outcome is outcome
    flagged = (Discrepancy(Issue.LEGACY_VOCABULARY, f"session outcome {word!r} read as {outcome.label}"),)
    assert rec.discrepancies == (flagged if legacy else ())


@pytest.mark.parametrize("word", ["match_confirmed", "not_processed", "Clear", "CLEAR", "approved", ""])
def test_a_session_outcome_outside_the_vocabulary_is_attention_and_said(word: str) -> None:
    rec = reconcile(session(word, n_checks=0), {})
    assert rec.session_outcome is Outcome.ATTENTION
    assert rec.discrepancies == (
        Discrepancy(Issue.UNKNOWN_SESSION_OUTCOME, f"session outcome {word!r} read as attention"),
    )


@pytest.mark.parametrize(
    ("raw", "status"),
    [("started", Status.STARTED), ("processing", Status.PROCESSING), ("complete", Status.COMPLETE),
     ("abandoned", Status.ABANDONED), ("cancelled", Status.CANCELLED),
     ("unknown", Status.UNKNOWN), ("completed", Status.UNKNOWN), ("Complete", Status.UNKNOWN)],
)  # fmt: skip
def test_each_session_status_word(raw: str, status: Status) -> None:
    rec = reconcile(session(None, status=raw, n_checks=0), {})
    assert (rec.status, rec.raw_status) == (status, raw)
    unknown = Discrepancy(Issue.UNKNOWN_SESSION_STATUS, f"session status {raw!r}")
    assert (unknown in rec.discrepancies) == (status is Status.UNKNOWN)


def test_a_session_without_a_status_is_unknown() -> None:
    rec = reconcile(WorkflowSession.model_validate({"id": "s1"}), {})
    assert (rec.status, rec.raw_status) == (Status.UNKNOWN, None)
    assert rec.discrepancies == (Discrepancy(Issue.UNKNOWN_SESSION_STATUS, "session status None"),)


@pytest.mark.parametrize(
    ("status", "fetch"),
    [("started", False), ("processing", False), ("complete", True), ("abandoned", True),
     ("cancelled", True), ("paused", True), (None, True)],
)  # fmt: skip
def test_only_a_running_session_is_looked_at_without_its_checks(status: str | None, fetch: bool) -> None:
    assert needs_checks(WorkflowSession.model_validate({"id": "s1", "status": status})) is fetch


def test_the_reconciliation_carries_the_sessions_identifiers() -> None:
    rec = reconcile(WorkflowSession.model_validate(SESSION), {})
    assert (rec.session_id, rec.client_id, rec.template_id, rec.raw_status, rec.raw_session_outcome) == (
        "5eb2b61e02df0a0008f1cf2a",
        "5eb1276d96be4a0008713af5",
        "68566be2a37a78622f4f7be3",
        "complete",
        "clear",
    )
