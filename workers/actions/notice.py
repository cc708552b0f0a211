"""Operational notices (the watchdog's) through the same senders as the alert actions: Slack,
e-mail or a log line."""

from __future__ import annotations

import httpx2

from service.errors import ActionFailed, ActionRejected
from service.log import get_logger
from workers.actions import slack, smtp
from workers.judging.action_config import EmailAction, LogAction, SlackAction
from workers.judging.rules import Rules

log = get_logger("cubehook.notice")


def notify(rules: Rules, http: httpx2.Client, subject: str, body: str) -> list[str]:
    """Send to every watchdog action; returns what happened to each (a failure does not stop the others)."""
    results = []
    for name in rules.file.watchdog.actions:
        config = rules.file.action[name]
        try:
            if isinstance(config, SlackAction):
                sent = slack.deliver(http, rules, config, subject, f"{subject}\n{body}")
                results.append(f"{name}: {sent}")
            elif isinstance(config, EmailAction):
                results.append(f"{name}: {smtp.send(config, rules, smtp.compose(config, subject, body))}")
            elif isinstance(config, LogAction):
                log.warning("notice", subject=subject, body=body)
                results.append(f"{name}: logged")
        except (ActionFailed, ActionRejected) as exc:
            log.warning("notice.failed", action=name, error=str(exc))
            results.append(f"{name}: failed ({exc})")
    return results
