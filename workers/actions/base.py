"""What every action's sender is handed (``ActionContext``), and the one way they post to a target
and judge its answer: the base the senders of this package build on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx2

from service.errors import ActionFailed, ActionRejected
from service.ids import is_complycube_id
from workers.complycube.bounded_reads import ACTION_ANSWER_MAX_BYTES, read_at_most
from workers.judging.action_config import AnyAction
from workers.judging.judge import Decision
from workers.judging.rules import Rules

ActionConfig = AnyAction


@dataclass(frozen=True)
class PersonalData:
    """What a rule may allow into an alert: fetched from ComplyCube only when it does."""

    name: str | None
    email: str | None


@dataclass(frozen=True)
class ActionContext:
    decision: Decision
    action: str
    config: ActionConfig
    idempotency_key: str  # the same for every attempt of this action for this decision
    rules: Rules
    http: httpx2.Client
    personal_data: Callable[[str], PersonalData]  # client id -> name and e-mail
    console_url: str | None = None  # CUBEHOOK_CONSOLE_URL: alerts link to the session's page there

    def person(self, allowed: bool) -> str | None:
        """ "Name, e-mail" of the decision's client, fetched from ComplyCube; None unless allowed,
        and when the session's client id is not a ComplyCube id (never requested: service.ids)."""
        if not allowed or not is_complycube_id(self.decision.client_id):
            return None
        data = self.personal_data(self.decision.client_id)
        return ", ".join(part for part in (data.name, data.email) if part) or None


def check_answer(response: httpx2.Response, target: str) -> str:
    """2xx: done; 408, 429, 5xx: try again later; any other 4xx: the target refuses it."""
    if response.is_success:
        return f"{target} answered {response.status_code}"
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise ActionFailed(f"{target} answered {response.status_code}")
    raise ActionRejected(f"{target} refused it: {response.status_code}")


def post(http: httpx2.Client, url: str, target: str, timeout: float, **kwargs: object) -> str:
    """POST, and judge the answer by its status alone. Its body is read only up to a bound (a
    small one lets the connection be reused; a huge one is left unread and the connection
    closed), so a target cannot make a worker hold more than that in memory. A 2xx with a long
    body is still delivered: failing it would send the decision again."""
    try:
        with http.stream("POST", url, timeout=timeout, **kwargs) as response:  # type: ignore[arg-type]
            read_at_most(response, ACTION_ANSWER_MAX_BYTES)
    except httpx2.TransportError as exc:
        raise ActionFailed(f"{target} unreachable: {type(exc).__name__}") from None
    return check_answer(response, target)
