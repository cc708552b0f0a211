"""The decision document the webhook action sends, and the text the alerts show. Pure.

The document's shape is fixed by ``decision.schema.json`` beside this file (JSON Schema 2020-12),
published in docs/configuration.md for the systems that receive it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workers.decide import Decision

SCHEMA_PATH = Path(__file__).resolve().parent / "decision.schema.json"


def decision_document(decision: Decision) -> dict[str, Any]:
    return {
        "type": "complycube.session.decision",
        "version": 1,
        "decision_id": decision.decision_id,
        "supersedes": decision.supersedes,
        "decided_at": decision.decided_at,
        "event_id": decision.trigger,
        "session_id": decision.session_id,
        "client_id": decision.client_id,
        "workflow_template_id": decision.template_id,
        "status": decision.status,
        "outcome": decision.outcome,
        "session_outcome": decision.session_outcome,
        "derived_outcome": decision.derived_outcome,
        "needs_review": decision.needs_review,
        "reasons": list(decision.reasons),
        "discrepancies": [dict(d) for d in decision.discrepancies],
        "checks": [
            {"check_id": c["check_id"], "type": c["type"], "status": c["status"], "outcome": c["outcome"]}
            for c in decision.checks
        ],
    }


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def failed_checks(decision: Decision) -> list[str]:
    """One line per check that is not clear, with what its breakdown says went wrong."""
    lines = []
    for check in decision.checks:
        if check["outcome"] == "clear":
            continue
        why = "; ".join(check.get("findings") or []) or check["status"]
        lines.append(
            f"{check['type'] or 'check'} {check['check_id']}: {check['outcome'] or check['status']} ({why})"
        )
    return lines


def alert_text(decision: Decision, portal_url: str, person: str | None) -> tuple[str, str]:
    """(subject, body) of a compliance alert. ``person`` is None unless a rule allows personal data."""
    outcome = (decision.outcome or decision.status).upper()
    subject = f"ComplyCube session {decision.session_id}: {outcome}"
    lines = [
        subject,
        f"Client: {decision.client_id}" + (f" ({person})" if person else ""),
        f"Workflow template: {decision.template_id}",
        f"Needs review: {'yes' if decision.needs_review else 'no'}",
        "Reasons:",
        *(f"  - {reason}" for reason in decision.reasons),
    ]
    failed = failed_checks(decision)
    if failed:
        lines += ["Checks not clear:", *(f"  - {line}" for line in failed)]
    lines += [
        f"Session: {portal_url.format(session_id=decision.session_id)}",
        f"Decision: {decision.decision_id}",
    ]
    return subject, "\n".join(lines)
