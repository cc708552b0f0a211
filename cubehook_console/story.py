"""A session's story, as `cubehook history` tells it, laid out for its page: the events received,
the snapshots fetched, the decisions (the current one, the superseded ones, people's with their
notes) with their checks, discrepancies and reasons, each action with its attempts and its state,
and what people did about the session in the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cubehook_console.queries import ledger, notes
from workers.decide import Decision

if TYPE_CHECKING:
    from cubehook_console.state import Console


@dataclass
class Action:
    name: str
    state: str  # the ledger's: pending, sending, sent, failed, dead
    attempts: list[dict[str, Any]] = field(default_factory=list)
    last_error: str | None = None


@dataclass
class DecisionView:
    decision_id: str
    kind: str
    outcome: str | None
    status: str
    decided_at: Any
    decided_by: str | None
    note: str | None
    supersedes: str | None
    superseded_by: str | None
    needs_review: bool
    reasons: list[str]
    discrepancies: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    trigger: str
    template_id: str | None = None
    actions: list[Action] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return self.superseded_by is None


@dataclass
class Story:
    session_id: str
    client_id: str | None
    template_id: str | None
    events: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]
    decisions: list[DecisionView]  # newest first
    human: list[dict[str, Any]]  # what people did about it, newest first

    @property
    def current(self) -> DecisionView | None:
        return next((d for d in self.decisions if d.current), None)

    @property
    def decidable(self) -> bool:
        """A person may approve or reject over the current decision (an outcome, theirs or not)."""
        current = self.current
        return current is not None and current.kind in ("outcome", "manual")


def story(console: Console, session_id: str) -> Story | None:
    """None when nothing is on record about the session."""
    parts = console.audit.history(session_id)
    if not parts:  # what people tried about an unknown session does not make it known
        return None
    human = console.trail.about(session_id)
    engine = console.audit.engine
    said = notes(engine, session_id)
    by_action: dict[tuple[str, str], Action] = {}
    for row in ledger(engine, session_id):
        by_action[(row["decision_id"], row["action"])] = Action(
            row["action"], row["state"], [], row["last_error"]
        )
    decisions: list[DecisionView] = []
    for part in parts:
        if part["entry"] == "attempt":
            key = (part["decision_id"], part["action"])
            by_action.setdefault(key, Action(part["action"], "?")).attempts.append(part)
    for part in parts:
        if part["entry"] != "decision":
            continue
        document = part["document"]
        view = DecisionView(
            decision_id=part["decision_id"],
            kind=part["kind"],
            outcome=part["outcome"],
            status=document.get("status", ""),
            decided_at=part["time"],
            decided_by=part.get("decided_by"),
            note=said.get(part["decision_id"]),
            supersedes=part["supersedes"],
            superseded_by=part.get("superseded_by"),
            needs_review=bool(part["needs_review"]),
            reasons=list(document.get("reasons", [])),
            discrepancies=list(document.get("discrepancies", [])),
            checks=list(document.get("checks", [])),
            trigger=part["trigger"],
            template_id=document.get("template_id"),
        )
        view.actions = [a for (decision_id, _), a in by_action.items() if decision_id == view.decision_id]
        decisions.append(view)
    decisions.reverse()
    latest = decisions[0] if decisions else None
    current = next((d for d in decisions if d.current), None)
    if current is not None:  # its actions the rules plan, queued but not yet claimed by a worker
        known = {a.name for a in current.actions}
        planned = _planned(console, parts, current.decision_id)
        current.actions += [Action(name, "queued") for name in planned if name not in known]
    snapshots = [p for p in parts if p["entry"] == "snapshot"]
    return Story(
        session_id=session_id,
        client_id=next((p["client_id"] for p in reversed(snapshots) if p.get("client_id")), None),
        template_id=_template(latest, snapshots),
        events=[p for p in parts if p["entry"] == "event"],
        snapshots=[_snapshot_summary(p) for p in snapshots],
        decisions=decisions,
        human=human,
    )


def _planned(console: Console, parts: list[dict[str, Any]], decision_id: str) -> list[str]:
    """The actions the rules plan for a recorded decision (none for a document it cannot read)."""
    document = next(
        p["document"] for p in parts if p["entry"] == "decision" and p["decision_id"] == decision_id
    )
    try:
        decision = Decision.from_dict(document)
    except (KeyError, TypeError, ValueError):
        return []
    return [p.action for p in console.manual.dispatcher.planned(decision)]


def _template(latest: DecisionView | None, snapshots: list[dict[str, Any]]) -> str | None:
    """The workflow template: the latest decision's, else the latest snapshot's."""
    if latest is not None and latest.template_id:
        return latest.template_id
    for snap in reversed(snapshots):
        template = (snap.get("session") or {}).get("workflowTemplateId")
        if template:
            return str(template)
    return None


def _snapshot_summary(part: dict[str, Any]) -> dict[str, Any]:
    session = part.get("session") or {}
    checks = part.get("checks") or {}
    return {
        "id": part["id"],
        "time": part["time"],
        "trigger": part["trigger"],
        "status": session.get("status"),
        "outcome": session.get("outcome"),
        "checks": len(checks),
        "fingerprint": part["fingerprint"],
    }
