"""Reconcile a workflow session with its checks. Pure: models in, frozen data out.

ComplyCube's vocabulary is mapped to cubehook's own by tables. Values outside them never fail:
they map to ``attention`` (human review) and are reported as discrepancies. The session's outcome
and the outcome derived from its checks are compared; the final outcome is the stricter of the
two, and any discrepancy is a reason for human review.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from service.complycube_models import Check, WorkflowSession
from service.ids import SHAPE, is_complycube_id


class Outcome(IntEnum):
    """Ordered by severity: max() is "the stricter"."""

    CLEAR = 0
    ATTENTION = 1
    REJECTED = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class Status(StrEnum):
    STARTED = "started"
    PROCESSING = "processing"
    COMPLETE = "complete"
    ABANDONED = "abandoned"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Issue(StrEnum):
    OUTCOMES_DISAGREE = "outcomes_disagree"  # the session's outcome is not the checks' outcome
    CHECK_MISSING = "check_missing"  # listed in allRelatedChecks, 404 from the API
    CHECK_UNREADABLE = "check_unreadable"  # listed with an id that is not a ComplyCube id: not fetched
    CHECK_FAILED = "check_failed"  # status failed: the check could not run
    CHECK_WITHOUT_RESULT = "check_without_result"  # complete, but no result.outcome
    UNKNOWN_CHECK_OUTCOME = "unknown_check_outcome"
    UNKNOWN_CHECK_STATUS = "unknown_check_status"
    UNKNOWN_SESSION_OUTCOME = "unknown_session_outcome"
    UNKNOWN_SESSION_STATUS = "unknown_session_status"
    SESSION_WITHOUT_OUTCOME = "session_without_outcome"  # complete, but no outcome
    LEGACY_VOCABULARY = "legacy_vocabulary"  # review/decline: the Python SDK's words


# Session outcomes: the API reference says clear/attention/rejected; ComplyCube's Python SDK
# docstring says clear/review/decline, read here as attention/rejected.
SESSION_OUTCOMES: dict[str, Outcome] = {
    "clear": Outcome.CLEAR,
    "attention": Outcome.ATTENTION,
    "rejected": Outcome.REJECTED,
    "review": Outcome.ATTENTION,
    "decline": Outcome.REJECTED,
}
LEGACY_OUTCOMES = frozenset({"review", "decline"})
# Check result outcomes: a confirmed screening match is as severe as a rejection; a check that
# could not be processed needs a person.
CHECK_OUTCOMES: dict[str, Outcome] = {
    "clear": Outcome.CLEAR,
    "attention": Outcome.ATTENTION,
    "rejected": Outcome.REJECTED,
    "match_confirmed": Outcome.REJECTED,
    "not_processed": Outcome.ATTENTION,
}
# Parts of a check's breakdown that hold what ComplyCube read about the person (name, date of
# birth, document number), never a finding: ComplyCube's sandbox itself uses the surname "attention".
PERSONAL_BREAKDOWN = frozenset({"extractedData"})
NOT_FETCHED = "not_fetched"  # a check's status when the session was looked at without its checks
SESSION_STATUSES = {status.value: status for status in Status if status is not Status.UNKNOWN}


@dataclass(frozen=True, slots=True)
class Discrepancy:
    issue: Issue
    detail: str
    check_id: str | None = None


@dataclass(frozen=True, slots=True)
class CheckView:
    check_id: str
    type: str | None
    status: str  # as ComplyCube said it, or "missing", "unreadable", or NOT_FETCHED
    raw_outcome: str | None  # as ComplyCube said it
    outcome: Outcome | None  # None while pending
    # Where the result breakdown is not clear, e.g. "dataValidation.expiryDate: rejected". Only
    # leaves holding an outcome word are read, so extracted personal data never lands here.
    findings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reconciliation:
    session_id: str
    client_id: str | None
    template_id: str | None
    status: Status
    raw_status: str | None
    raw_session_outcome: str | None
    session_outcome: Outcome | None
    derived_outcome: Outcome | None  # None when there is no check to derive from
    final_outcome: Outcome | None  # None unless the session is complete
    checks: tuple[CheckView, ...]
    pending: tuple[str, ...]  # ids of checks still pending
    discrepancies: tuple[Discrepancy, ...]
    fingerprint: str  # the same for the same state, whatever the timestamps

    @property
    def needs_review(self) -> bool:
        return bool(self.discrepancies)


def needs_checks(session: WorkflowSession) -> bool:
    """False while the session is still running (started, processing): its checks cannot decide
    anything yet, so a look at it need not fetch them (one API call instead of 1 + checks)."""
    return SESSION_STATUSES.get(session.status or "") not in (Status.STARTED, Status.PROCESSING)


def reconcile(session: WorkflowSession, checks: Mapping[str, Check | None]) -> Reconciliation:
    """``checks`` maps the ids in ``session.all_related_checks`` to their Check, or None when the
    API answered 404 for it. An id left out was not fetched (see ``needs_checks``): it counts as
    pending, without a discrepancy."""
    issues: list[Discrepancy] = []
    status = SESSION_STATUSES.get(session.status or "", Status.UNKNOWN)
    if status is Status.UNKNOWN:
        issues.append(Discrepancy(Issue.UNKNOWN_SESSION_STATUS, f"session status {session.status!r}"))

    views = tuple(
        _view(ref.check_id, ref.type, checks.get(ref.check_id), issues)
        if ref.check_id in checks
        else CheckView(ref.check_id, ref.type, NOT_FETCHED, None, None)
        for ref in session.all_related_checks
    )
    pending = tuple(v.check_id for v in views if v.outcome is None)
    settled = [v.outcome for v in views if v.outcome is not None]
    derived = max(settled) if settled else None

    session_outcome = _session_outcome(session.outcome, status, issues)
    final: Outcome | None = None
    if status is Status.COMPLETE:
        final = max(o for o in (session_outcome, derived, Outcome.CLEAR) if o is not None)
        if session_outcome is not None and derived is not None and session_outcome != derived:
            issues.append(
                Discrepancy(
                    Issue.OUTCOMES_DISAGREE,
                    f"session says {session_outcome.label}, its checks say {derived.label}",
                )
            )
    return Reconciliation(
        session_id=session.id,
        client_id=session.client_id,
        template_id=session.workflow_template_id,
        status=status,
        raw_status=session.status,
        raw_session_outcome=session.outcome,
        session_outcome=session_outcome,
        derived_outcome=derived,
        final_outcome=final,
        checks=views,
        pending=pending,
        discrepancies=tuple(issues),
        fingerprint=_fingerprint(session, views),
    )


def _session_outcome(raw: str | None, status: Status, issues: list[Discrepancy]) -> Outcome | None:
    if raw is None:
        if status is Status.COMPLETE:
            issues.append(Discrepancy(Issue.SESSION_WITHOUT_OUTCOME, "complete session without an outcome"))
            return Outcome.ATTENTION
        return None
    outcome = SESSION_OUTCOMES.get(raw)
    if outcome is None:
        issues.append(
            Discrepancy(Issue.UNKNOWN_SESSION_OUTCOME, f"session outcome {raw!r} read as attention")
        )
        return Outcome.ATTENTION
    if raw in LEGACY_OUTCOMES:
        issues.append(
            Discrepancy(Issue.LEGACY_VOCABULARY, f"session outcome {raw!r} read as {outcome.label}")
        )
    return outcome


def _view(
    check_id: str, listed_type: str | None, check: Check | None, issues: list[Discrepancy]
) -> CheckView:
    if not is_complycube_id(check_id):  # never requested (service.ids): a person must look
        why = f"listed by the session with an id that is not a ComplyCube id ({SHAPE}): not fetched"
        issues.append(Discrepancy(Issue.CHECK_UNREADABLE, why, check_id))
        return CheckView(check_id, listed_type, "unreadable", None, Outcome.ATTENTION)
    if check is None:
        issues.append(
            Discrepancy(Issue.CHECK_MISSING, "listed by the session, not found by the API", check_id)
        )
        return CheckView(check_id, listed_type, "missing", None, Outcome.ATTENTION)
    raw = check.result.outcome if check.result else None
    kind = check.type or listed_type
    findings = tuple(_findings(check.result.breakdown)) if check.result and check.result.breakdown else ()
    if check.status == "pending":
        return CheckView(check_id, kind, "pending", raw, None)
    if check.status == "failed":
        issues.append(Discrepancy(Issue.CHECK_FAILED, "the check failed to run", check_id))
        return CheckView(check_id, kind, "failed", raw, Outcome.ATTENTION)
    if check.status != "complete":
        issues.append(Discrepancy(Issue.UNKNOWN_CHECK_STATUS, f"check status {check.status!r}", check_id))
        return CheckView(check_id, kind, str(check.status), raw, Outcome.ATTENTION)
    if raw is None:
        issues.append(Discrepancy(Issue.CHECK_WITHOUT_RESULT, "complete check without an outcome", check_id))
        return CheckView(check_id, kind, "complete", None, Outcome.ATTENTION)
    outcome = CHECK_OUTCOMES.get(raw)
    if outcome is None:
        issues.append(
            Discrepancy(Issue.UNKNOWN_CHECK_OUTCOME, f"check outcome {raw!r} read as attention", check_id)
        )
        return CheckView(check_id, kind, "complete", raw, Outcome.ATTENTION, findings)
    return CheckView(check_id, kind, "complete", raw, outcome, findings)


def _findings(breakdown: Mapping[str, object], path: str = "") -> list[str]:
    found = []
    for key, value in breakdown.items():
        where = f"{path}.{key}" if path else key
        if key in PERSONAL_BREAKDOWN:
            continue  # what the document says about the person: a surname can be "attention"
        if isinstance(value, Mapping):
            found += _findings(value, where)
        elif isinstance(value, str) and value in CHECK_OUTCOMES and value != "clear":
            found.append(f"{where}: {value}")
    return found


def _fingerprint(session: WorkflowSession, views: tuple[CheckView, ...]) -> str:
    state = {
        "status": session.status,
        "outcome": session.outcome,
        "checks": sorted((v.check_id, v.status, v.raw_outcome) for v in views),
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:32]
