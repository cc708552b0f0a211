"""reconcile() over each way a listed check comes back, its fingerprint (the state a decision is
made for: it changes with everything that can change a decision and with nothing else), and
properties over generated sessions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from service.complycube_models import Check, WorkflowSession
from tests.unit.test_reconcile import CHECK_VALUES, EXPECTED_CHECK, session
from workers.judging.reconcile import CheckView, Discrepancy, Issue, Outcome, reconcile


def one_check(doc: dict[str, Any] | None, listed_type: str | None = "document_check") -> Any:
    """The reconciliation of a complete session said ``attention`` listing one check "c0" of
    ``listed_type``, which the API answered with ``doc`` (None: 404)."""
    listed = {"checkId": "c0"} if listed_type is None else {"checkId": "c0", "type": listed_type}
    sess = WorkflowSession.model_validate({"id": "s1", "status": "complete", "outcome": "attention",
                                           "allRelatedChecks": [listed]})  # fmt: skip
    return reconcile(sess, {"c0": None if doc is None else Check.model_validate({"id": "c0", **doc})})


REJECTED_BREAKDOWN = {"dataValidation": {"expiryDate": "rejected", "name": "clear"}}


# Every way a listed check can come back: its view (type, status, outcome word, outcome, findings)
# and the discrepancy it adds. The check's own type, when it has one, wins over the listed one.
@pytest.mark.parametrize(
    ("doc", "view", "discrepancy"),
    [
        (None, CheckView("c0", "document_check", "missing", None, Outcome.ATTENTION),
         Discrepancy(Issue.CHECK_MISSING, "listed by the session, not found by the API", "c0")),
        ({"status": "pending", "result": {"outcome": "clear"}},
         CheckView("c0", "document_check", "pending", "clear", None), None),
        ({"type": "identity_check", "status": "failed", "result": {"outcome": "rejected"}},
         CheckView("c0", "identity_check", "failed", "rejected", Outcome.ATTENTION),
         Discrepancy(Issue.CHECK_FAILED, "the check failed to run", "c0")),
        ({"status": "archived", "result": {"outcome": "clear"}},
         CheckView("c0", "document_check", "archived", "clear", Outcome.ATTENTION),
         Discrepancy(Issue.UNKNOWN_CHECK_STATUS, "check status 'archived'", "c0")),
        ({"result": {"outcome": "clear"}},
         CheckView("c0", "document_check", "None", "clear", Outcome.ATTENTION),
         Discrepancy(Issue.UNKNOWN_CHECK_STATUS, "check status None", "c0")),
        ({"type": "identity_check", "status": "complete"},
         CheckView("c0", "identity_check", "complete", None, Outcome.ATTENTION),
         Discrepancy(Issue.CHECK_WITHOUT_RESULT, "complete check without an outcome", "c0")),
        ({"type": "identity_check", "status": "complete", "result": {"outcome": "odd", "breakdown": REJECTED_BREAKDOWN}},
         CheckView("c0", "identity_check", "complete", "odd", Outcome.ATTENTION, ("dataValidation.expiryDate: rejected",)),
         Discrepancy(Issue.UNKNOWN_CHECK_OUTCOME, "check outcome 'odd' read as attention", "c0")),
        ({"type": "identity_check", "status": "complete", "result": {"outcome": "rejected", "breakdown": REJECTED_BREAKDOWN}},
         CheckView("c0", "identity_check", "complete", "rejected", Outcome.REJECTED, ("dataValidation.expiryDate: rejected",)),
         Discrepancy(Issue.OUTCOMES_DISAGREE, "session says attention, its checks say rejected")),
    ],
)  # fmt: skip
def test_each_way_a_check_comes_back(
    doc: dict[str, Any] | None, view: CheckView, discrepancy: Discrepancy | None
) -> None:
    rec = one_check(doc)
    assert rec.checks == (view,)
    assert rec.discrepancies == (() if discrepancy is None else (discrepancy,))


@pytest.mark.parametrize(
    ("own", "listed", "expected"),
    [("identity_check", "document_check", "identity_check"), ("identity_check", None, "identity_check"),
     (None, "document_check", "document_check"), (None, None, None)],
)  # fmt: skip
def test_the_checks_own_type_wins_over_the_listed_one(
    own: str | None, listed: str | None, expected: str | None
) -> None:
    doc = {"status": "complete", "result": {"outcome": "clear"}} | ({} if own is None else {"type": own})
    assert one_check(doc, listed).checks[0].type == expected
    pending = {"status": "pending"} | ({} if own is None else {"type": own})
    assert one_check(pending, listed).checks[0].type == expected


def test_a_check_not_fetched_keeps_its_listed_type_and_says_so() -> None:
    running = WorkflowSession.model_validate({"id": "s1", "status": "processing",
        "allRelatedChecks": [{"checkId": "c0", "type": "document_check"}, {"checkId": "c1"}]})  # fmt: skip
    rec = reconcile(running, {})
    assert rec.checks == (
        CheckView("c0", "document_check", "not_fetched", None, None),
        CheckView("c1", None, "not_fetched", None, None),
    )
    assert rec.pending == ("c0", "c1")


def test_a_check_listed_with_an_id_that_is_not_a_complycube_id_is_unreadable_and_needs_a_person() -> None:
    bad = "../clients/cl1"
    sess = WorkflowSession.model_validate({"id": "s1", "status": "complete", "outcome": "clear",
        "allRelatedChecks": [{"checkId": "c0"}, {"checkId": bad, "type": "document_check"}]})  # fmt: skip
    rec = reconcile(sess, {"c0": Check.model_validate({"id": "c0", "status": "complete",
                                                       "result": {"outcome": "clear"}}), bad: None})  # fmt: skip
    assert rec.checks[1] == CheckView(bad, "document_check", "unreadable", None, Outcome.ATTENTION)
    assert rec.discrepancies[0] == Discrepancy(
        Issue.CHECK_UNREADABLE,
        "listed by the session with an id that is not a ComplyCube id (1-64 letters, digits, _ or -): not fetched",
        bad,
    )
    assert rec.final_outcome is Outcome.ATTENTION


# The fingerprint is stored with each decision; a session is decided again only when it changes.
# So it must change with everything that can change a decision, and with nothing else.
FINGERPRINT_BASE: dict[str, Any] = {"id": "s1", "status": "complete", "outcome": "clear",
                                    "allRelatedChecks": [{"checkId": "c0"}, {"checkId": "c1"}]}  # fmt: skip
FINGERPRINT_CHECKS: dict[str, dict[str, Any]] = {
    "c0": {"status": "complete", "result": {"outcome": "clear"}},
    "c1": {"status": "pending"},
}


def fingerprint(session_changes: dict[str, Any], check_changes: dict[str, dict[str, Any] | None]) -> str:
    doc = FINGERPRINT_BASE | session_changes
    docs = FINGERPRINT_CHECKS | check_changes
    checks = {cid: None if d is None else Check.model_validate({"id": cid, **d}) for cid, d in docs.items()}
    return reconcile(WorkflowSession.model_validate(doc), checks).fingerprint


@pytest.mark.parametrize(
    ("session_changes", "check_changes"),
    [
        ({"status": "processing"}, {}),  # the session's status
        ({"status": None}, {}),
        ({"outcome": "attention"}, {}),  # the session's outcome
        ({"outcome": None}, {}),
        ({}, {"c1": {"status": "failed"}}),  # a check's status, its outcome word unchanged (none)
        ({}, {"c1": None}),  # a check the API no longer knows
        (
            {},
            {"c0": {"status": "complete", "result": {"outcome": "match_confirmed"}}},
        ),  # a check's outcome word
        ({"allRelatedChecks": [{"checkId": "c0"}]}, {}),  # a check no longer listed
    ],
)
def test_the_fingerprint_changes_with_the_state(
    session_changes: dict[str, Any], check_changes: dict[str, dict[str, Any] | None]
) -> None:
    assert fingerprint(session_changes, check_changes) != fingerprint({}, {})


@pytest.mark.parametrize(
    ("session_changes", "check_changes"),
    [
        ({"updatedAt": "2030-01-01T00:00:00Z", "completedAt": "2030-01-01T00:00:00Z"}, {}),
        ({"allRelatedChecks": [{"checkId": "c1"}, {"checkId": "c0"}]}, {}),  # the order listed
        ({"allRelatedChecks": [{"checkId": "c0", "type": "document_check"}, {"checkId": "c1"}]}, {}),
        (
            {},
            {
                "c0": {
                    "status": "complete",
                    "updatedAt": "2030-01-01T00:00:00Z",
                    "result": {"outcome": "clear"},
                }
            },
        ),
        ({}, {"c0": {"status": "complete", "result": {"outcome": "clear", "breakdown": REJECTED_BREAKDOWN}}}),
    ],
)
def test_the_fingerprint_ignores_what_cannot_change_a_decision(
    session_changes: dict[str, Any], check_changes: dict[str, dict[str, Any] | None]
) -> None:
    assert fingerprint(session_changes, check_changes) == fingerprint({}, {})


def test_the_fingerprint_recipe_is_stable_across_releases() -> None:
    """Stored fingerprints are compared with fresh ones: a change of recipe (a key renamed, keys
    unsorted, a longer prefix) would make every stored session look changed after an upgrade, and
    decide it again. The value: the first 32 hex digits of the SHA-256 of the sorted-key JSON
    {"checks": [["c0", "complete", "clear"], ["c1", "pending", null]], "outcome": "clear",
    "status": "complete"}, worked out apart from reconcile.py."""
    assert fingerprint({}, {}) == "338e69472ec1d07caea50bd9e2d397f8"


# Properties over any mix of checks: the words are drawn from ComplyCube's vocabulary and beyond.
SEVERITY = {"clear": Outcome.CLEAR, "attention": Outcome.ATTENTION, "rejected": Outcome.REJECTED}
KNOWN_CHECK_WORDS = {word: Outcome(n) for word, n in EXPECTED_CHECK.items() if word != "surprise"}
check_states = st.tuples(
    st.sampled_from(["complete", "complete", "pending", "failed", "archived", None]),
    st.sampled_from([*CHECK_VALUES, None]),
)


def checks_of(states: list[tuple[str | None, str | None]]) -> dict[str, Check]:
    """Checks c0, c1... in these (status, outcome word) states."""
    checks: dict[str, Check] = {}
    for n, (status, word) in enumerate(states):
        result = {} if word is None else {"result": {"outcome": word}}
        checks[f"c{n}"] = Check.model_validate({"id": f"c{n}", "status": status, **result})
    return checks


@hypothesis_settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(said=st.sampled_from(["clear", "attention", "rejected"]), states=st.lists(check_states, max_size=5))
def test_a_complete_session_is_never_judged_less_strictly_than_any_of_its_parts(
    said: str, states: list[tuple[str | None, str | None]]
) -> None:
    rec = reconcile(session(said, n_checks=len(states)), checks_of(states))
    assert rec.final_outcome is not None
    assert rec.final_outcome >= SEVERITY[said]
    for view in rec.checks:
        assert view.outcome is None or rec.final_outcome >= view.outcome
    assert rec.pending == tuple(f"c{n}" for n, (status, _) in enumerate(states) if status == "pending")
    # A person needs to look unless every check finished with a known word (or is still pending)
    # and the strictest of them is what the session said.
    clean = all(
        status == "pending" or (status == "complete" and word in KNOWN_CHECK_WORDS) for status, word in states
    )
    settled = [
        KNOWN_CHECK_WORDS[w] for status, w in states if status == "complete" and w in KNOWN_CHECK_WORDS
    ]
    agreed = not settled or max(settled) is SEVERITY[said]
    assert rec.needs_review == (not (clean and agreed)), rec.discrepancies
    assert rec.needs_review == bool(rec.discrepancies)


@hypothesis_settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(order=st.permutations(["c0", "c1", "c2"]))
def test_the_fingerprint_does_not_depend_on_the_order_checks_are_listed_or_fetched(order: list[str]) -> None:
    known = checks_of([("complete", "clear"), ("pending", None)])  # c0, c1; c2 is a 404

    def looked_at(ids: list[str]) -> str:
        listed = {"id": "s1", "status": "complete", "outcome": "clear",
                  "allRelatedChecks": [{"checkId": cid} for cid in ids]}  # fmt: skip
        fetched = {cid: known.get(cid) for cid in ids}
        return reconcile(WorkflowSession.model_validate(listed), fetched).fingerprint

    assert looked_at(order) == looked_at(["c0", "c1", "c2"])
