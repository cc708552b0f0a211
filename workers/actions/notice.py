"""Operational notices (the watchdog's) through the same senders as the alert actions: Slack,
e-mail or a log line."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

from service.errors import ActionFailed, ActionRejected
from service.log import get_logger
from workers.actions import slack, smtp
from workers.judging.action_config import EmailAction, LogAction, SlackAction
from workers.judging.rules import Rules

log = get_logger("cubehook.notice")


@dataclass(frozen=True)
class Told:
    """What became of a notice at one watchdog action."""

    action: str
    accepted: bool  # its target took it (Slack answered 2xx, the server took the mail, logged)
    said: str

    def __str__(self) -> str:
        return f"{self.action}: {self.said}"


def notify(rules: Rules, http: httpx2.Client, subject: str, body: str) -> list[Told]:
    """Send to every watchdog action; returns what happened to each (a failure does not stop the others)."""
    results = []
    for name in rules.file.watchdog.actions:
        config = rules.file.action[name]
        try:
            if isinstance(config, SlackAction):
                sent = slack.deliver(http, rules, config, subject, f"{subject}\n{body}")
                results.append(Told(name, True, sent))
            elif isinstance(config, EmailAction):
                mailed = smtp.send(config, rules, smtp.compose(config, subject, body))
                results.append(Told(name, True, mailed))
            elif isinstance(config, LogAction):
                log.warning("notice", subject=subject, body=body)
                results.append(Told(name, True, "logged"))
        except (ActionFailed, ActionRejected) as exc:
            log.warning("notice.failed", action=name, error=str(exc))
            results.append(Told(name, False, f"failed ({exc})"))
    return results
