"""From a reconciliation to a step: record progress, wait for pending checks, or decide. Pure.

- ``started`` / ``processing`` (or a status ComplyCube has not documented): progress, no decision.
- ``abandoned`` / ``cancelled``: a terminal decision of their own, with no outcome.
- ``complete`` with checks still pending: wait (the caller re-checks later, on a bounded
  schedule); once the wait is over, decide ``attention`` and say which checks never finished.
- ``complete``: decide the final outcome, with every discrepancy as a reason for review.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from workers.reconcile import CheckView, Outcome, Reconciliation, Status


class Step(StrEnum):
    PROGRESS = "progress"
    WAIT = "wait"
    DECIDE = "decide"


class Kind(StrEnum):
    OUTCOME = "outcome"  # clear / attention / rejected: the outcome actions run
    TERMINAL = "terminal"  # abandoned / cancelled: recorded, no outcome actions


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    outcome: Outcome | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """What was decided for one state of a session; superseded, never edited, when the state changes."""

    decision_id: str
    session_id: str
    client_id: str | None
    template_id: str | None
    status: str
    kind: Kind
    outcome: str | None
    session_outcome: str | None
    derived_outcome: str | None
    needs_review: bool
    reasons: tuple[str, ...]
    discrepancies: tuple[dict[str, str | None], ...]
    checks: tuple[dict[str, Any], ...]
    fingerprint: str
    supersedes: str | None
    decided_at: str
    trigger: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        fields = dict(data)
        fields["kind"] = Kind(fields["kind"])
        for name in ("reasons", "discrepancies", "checks"):
            fields[name] = tuple(fields[name])
        return cls(**fields)


def judge(rec: Reconciliation, pending_for: float | None, max_wait: float) -> tuple[Step, Verdict | None]:
    """``pending_for``: seconds since the session was first seen complete with pending checks."""
    if rec.status in (Status.ABANDONED, Status.CANCELLED):
        return Step.DECIDE, Verdict(Kind.TERMINAL, None, (f"session {rec.status.value}",))
    if rec.status is not Status.COMPLETE:
        return Step.PROGRESS, None
    assert rec.final_outcome is not None
    reasons = [d.detail if d.check_id is None else f"{d.check_id}: {d.detail}" for d in rec.discrepancies]
    outcome = rec.final_outcome
    if rec.pending:
        if pending_for is None or pending_for < max_wait:
            return Step.WAIT, None
        outcome = max(outcome, Outcome.ATTENTION)
        waited = f"{int(pending_for)} s" if pending_for != float("inf") else "the whole re-check schedule"
        reasons.append(f"checks still pending after {waited}: {', '.join(rec.pending)}")
    if not reasons:
        reasons.append(f"session and checks agree: {outcome.label}")
    return Step.DECIDE, Verdict(Kind.OUTCOME, outcome, tuple(reasons))


def make_decision(
    rec: Reconciliation,
    verdict: Verdict,
    *,
    decision_id: str,
    supersedes: str | None,
    decided_at: str,
    trigger: str,
) -> Decision:
    def label(outcome: Outcome | None) -> str | None:
        return outcome.label if outcome is not None else None

    return Decision(
        decision_id=decision_id,
        session_id=rec.session_id,
        client_id=rec.client_id,
        template_id=rec.template_id,
        status=rec.status.value,
        kind=verdict.kind,
        outcome=label(verdict.outcome),
        session_outcome=rec.raw_session_outcome,
        derived_outcome=label(rec.derived_outcome),
        needs_review=rec.needs_review or bool(rec.pending),
        reasons=verdict.reasons,
        discrepancies=tuple(
            {"issue": d.issue.value, "detail": d.detail, "check_id": d.check_id} for d in rec.discrepancies
        ),
        checks=tuple(_check_entry(c) for c in rec.checks),
        fingerprint=rec.fingerprint,
        supersedes=supersedes,
        decided_at=decided_at,
        trigger=trigger,
    )


def _check_entry(check: CheckView) -> dict[str, Any]:
    return {
        "check_id": check.check_id,
        "type": check.type,
        "status": check.status,
        "outcome": check.raw_outcome,
        "findings": list(check.findings),
    }
