"""From a reconciliation to what follows: progress, wait for pending checks, or decide. Pure: it
decides everything, the re-check schedule included; the pipeline only fetches, commits and logs.

- ``started`` / ``processing`` (or a status ComplyCube has not documented): Progress, no decision.
- ``abandoned`` / ``cancelled``: Decide, a terminal decision of their own, with no outcome.
- ``complete`` with checks still pending: Wait, to be looked at again at the next point of the
  re-check schedule (RecheckSchedule); once the schedule is spent, Decide ``attention``, saying
  which checks never finished.
- ``complete``: Decide the final outcome, with every discrepancy as a reason for review.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from itertools import accumulate
from typing import Any

from workers.judging.reconcile import CheckView, Outcome, Reconciliation, Status

RECHECK = "recheck-"  # + k: the trigger of the look at the schedule's k-th point (1-based)


@dataclass(frozen=True, slots=True)
class RecheckSchedule:
    """When a complete session with checks still pending is looked at again: at each point, in
    seconds since it was first seen so (CUBEHOOK_PENDING_RECHECK_INTERVALS, accumulated); after the
    last, it is decided ``attention``."""

    points: tuple[int, ...]

    @classmethod
    def after(cls, intervals: Iterable[int]) -> RecheckSchedule:
        return cls(tuple(accumulate(intervals)))

    @property
    def spent_at(self) -> int:
        """Pending this long, the session is decided without its pending checks."""
        return self.points[-1] if self.points else 0

    def trigger(self, k: int) -> str:
        return f"{RECHECK}{k}"

    def waited(self, seen_for: float, trigger: str) -> float:
        """How long the checks have been pending, as the schedule counts it: the look at point k
        stands for point k reached (RQ's scheduler counts whole seconds and may run it a little
        early, which would otherwise stall the schedule)."""
        number = trigger.removeprefix(RECHECK)
        if trigger.startswith(RECHECK) and number.isdigit() and 1 <= int(number) <= len(self.points):
            return max(seen_for, float(self.points[int(number) - 1]))
        return seen_for

    def next_look(self, waited: float) -> Wait:
        """The next point after ``waited``; only while the schedule is not spent."""
        k, point = next((k, p) for k, p in enumerate(self.points, start=1) if p > waited)
        return Wait(k, max(0.0, point - waited))


@dataclass(frozen=True, slots=True)
class Progress:
    """Still running: record that it was seen so; nothing to decide."""

    status: Status


@dataclass(frozen=True, slots=True)
class Wait:
    """Checks still pending: look again at the schedule's point ``recheck``, ``delay`` s from now."""

    recheck: int
    delay: float


class Kind(StrEnum):
    OUTCOME = "outcome"  # clear / attention / rejected: the outcome actions run
    TERMINAL = "terminal"  # abandoned / cancelled: recorded, no outcome actions
    MANUAL = "manual"  # a person's clear / rejected, over an automatic one (workers.manual): actions run


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
    decided_by: str | None = None  # who, for a manual decision; None: cubehook, automatically

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        fields = dict(data)
        fields["kind"] = Kind(fields["kind"])
        for name in ("reasons", "discrepancies", "checks"):
            fields[name] = tuple(fields[name])
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class Decide:
    verdict: Verdict


Judgement = Progress | Wait | Decide


def judge(rec: Reconciliation, waited: float, schedule: RecheckSchedule) -> Judgement:
    """``waited``: how long the session's checks have been pending, as the schedule counts it
    (``RecheckSchedule.waited``; 0 when none is)."""
    if rec.status in (Status.ABANDONED, Status.CANCELLED):
        return Decide(Verdict(Kind.TERMINAL, None, (f"session {rec.status.value}",)))
    if rec.status is not Status.COMPLETE or rec.final_outcome is None:
        return Progress(rec.status)
    reasons = [d.detail if d.check_id is None else f"{d.check_id}: {d.detail}" for d in rec.discrepancies]
    outcome = rec.final_outcome
    if rec.pending:
        if waited < schedule.spent_at:
            return schedule.next_look(waited)
        outcome = max(outcome, Outcome.ATTENTION)
        spent = f"{int(waited)} s" if waited != float("inf") else "the whole re-check schedule"
        reasons.append(f"checks still pending after {spent}: {', '.join(rec.pending)}")
    if not reasons:
        reasons.append(f"session and checks agree: {outcome.label}")
    return Decide(Verdict(Kind.OUTCOME, outcome, tuple(reasons)))


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
