"""One module per action type: the only code with side effects on the outside world.

Each sender takes an ``ActionContext`` (workers.actions.base) and returns a short description of
what it did, or raises ActionFailed (retry later) or ActionRejected (dead-letter now). This module
is only the table that routes an action's ``type`` to its sender.
"""

from __future__ import annotations

from collections.abc import Callable

from workers.actions import call, email, log, slack, webhook
from workers.actions.base import ActionContext

SENDERS: dict[str, Callable[[ActionContext], str]] = {
    "webhook": webhook.send, "slack": slack.send, "email": email.send, "log": log.send, "python": call.send,
}  # fmt: skip


def senders() -> dict[str, Callable[[ActionContext], str]]:
    return dict(SENDERS)
