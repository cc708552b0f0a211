"""The decision document the webhook action sends, and the text the alerts show. Pure.

The document's shape is fixed by ``decision.schema.json`` beside this file (JSON Schema 2020-12),
published in docs/configuration.md for the systems that receive it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from workers.judging.judge import Decision

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
        "decided_by": decision.decided_by,
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


def console_link(console_url: str | None, session_id: str) -> str | None:
    """The session's page in cubehook's console (CUBEHOOK_CONSOLE_URL), when there is one."""
    return f"{console_url.rstrip('/')}/sessions/{quote(session_id, safe='')}" if console_url else None


def portal_link(portal_url: str, session_id: str) -> str:
    """The session's page in ComplyCube's portal: the action's ``portal_url``, the id quoted."""
    return portal_url.format(session_id=quote(session_id, safe=""))


def slack_escape(text: str) -> str:
    """Text that did not come from cubehook (ComplyCube's strings, a client's name, a person's),
    made inert for Slack: ``&``, ``<`` and ``>`` are Slack's control characters (links, mentions
    such as ``<!channel>``), written as entities as Slack documents
    (https://api.slack.com/reference/surfaces/formatting#escaping). Slack has no escape for
    ``*``, ``_``, ``~`` and backticks: such text can still look bold, never link or notify."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(escaped: str, limit: int) -> str:
    """At most ``limit`` characters of escaped text (Slack refuses a longer text: the alert would be
    dead-lettered), never cutting an entity in two."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[:limit]
    amp = cut.rfind("&", max(0, limit - 4))
    return cut[:amp] if amp != -1 and ";" not in cut[amp:] else cut


def alert_text(
    decision: Decision, portal_url: str, person: str | None, console_url: str | None = None
) -> tuple[str, str]:
    """(subject, body) of a compliance alert. ``person`` is None unless a rule allows personal data."""
    outcome = (decision.outcome or decision.status).upper()
    subject = f"ComplyCube session {decision.session_id}: {outcome}"
    lines = [
        subject,
        f"Client: {decision.client_id}" + (f" ({person})" if person else ""),
        f"Workflow template: {decision.template_id}",
        f"Needs review: {'yes' if decision.needs_review else 'no'}",
        *([f"Decided by: {decision.decided_by}"] if decision.decided_by else []),
        "Reasons:",
        *(f"  - {reason}" for reason in decision.reasons),
    ]
    failed = failed_checks(decision)
    if failed:
        lines += ["Checks not clear:", *(f"  - {line}" for line in failed)]
    console = console_link(console_url, decision.session_id)
    lines += [
        *([f"Review: {console}"] if console else []),
        f"Session: {portal_link(portal_url, decision.session_id)}",
        f"Decision: {decision.decision_id}",
    ]
    return subject, "\n".join(lines)


def alert_blocks(
    decision: Decision, portal_url: str, person: str | None, console_url: str | None = None
) -> list[dict[str, Any]]:
    """The alert as Slack Block Kit (https://api.slack.com/reference/block-kit/blocks): a header,
    the facts as fields, the reasons and the checks not clear, and buttons to the session's page
    in the console (when CUBEHOOK_CONSOLE_URL is set) and in ComplyCube's portal.

    Every text that did not come from cubehook is escaped (``slack_escape``), and the mrkdwn
    texts are ``verbatim``: Slack turns no bare URL, channel name or mention in them into a link
    or a notification. cubehook's own links are the buttons'."""

    def plain(text: str, limit: int) -> dict[str, Any]:
        return {"type": "plain_text", "text": clip(slack_escape(text), limit), "emoji": False}

    def mrkdwn(label: str, text: str) -> dict[str, Any]:
        # 2000: a field's limit (a section's text is 3000).
        return {"type": "mrkdwn", "text": clip(f"*{label}*\n{slack_escape(text)}", 2000), "verbatim": True}

    outcome = (decision.outcome or decision.status).upper()
    facts = {
        "Outcome": outcome,
        "Needs review": "yes" if decision.needs_review else "no",
        "Client": f"{decision.client_id}" + (f" ({person})" if person else ""),
        "Workflow template": f"{decision.template_id}",
        "Decided by": decision.decided_by or "cubehook (automatically)",
        "Decision": decision.decision_id,
    }
    reasons = "\n".join(f"• {reason}" for reason in decision.reasons)
    failed = "\n".join(f"• {line}" for line in failed_checks(decision))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain(f"ComplyCube session {decision.session_id}: {outcome}", 150)},
        {"type": "section", "fields": [mrkdwn(name, value) for name, value in facts.items()]},
        {"type": "section", "text": mrkdwn("Reasons", reasons)},
    ]
    if failed:
        blocks.append({"type": "section", "text": mrkdwn("Checks not clear", failed)})
    buttons = []
    console = console_link(console_url, decision.session_id)
    if console:
        buttons.append({"type": "button", "text": plain("Review in cubehook", 75), "url": console,
                        "style": "primary", "action_id": "console"})  # fmt: skip
    portal = portal_link(portal_url, decision.session_id)
    buttons.append(
        {"type": "button", "text": plain("Open in ComplyCube", 75), "url": portal, "action_id": "portal"}
    )
    blocks.append({"type": "actions", "elements": buttons})
    return blocks
