"""One structured log line per decision: the default action when no rules file is given."""

from __future__ import annotations

from service.log import get_logger
from workers.actions.base import ActionContext

log = get_logger("cubehook.actions")


def send(context: ActionContext) -> str:
    decision = context.decision
    log.info(
        "action.log",
        decision_id=decision.decision_id,
        session_id=decision.session_id,
        client_id=decision.client_id,
        outcome=decision.outcome,
        needs_review=decision.needs_review,
        reasons=list(decision.reasons),
        supersedes=decision.supersedes,
    )
    return "logged"
