"""An alert to a Slack incoming webhook (https://api.slack.com/messaging/webhooks), in Block Kit:
the outcome, the template, which checks were not clear and why, and buttons to the session's page
in cubehook's console (CUBEHOOK_CONSOLE_URL) and in ComplyCube. Personal data only when the rule
allows it; by default the client id is the only thing that names the customer. Every text that did
not come from cubehook reaches Slack escaped (workers.actions.document.slack_escape): a client's
name or a string of ComplyCube's cannot make a link or a mention such as <!channel>."""

from __future__ import annotations

from typing import Any

import httpx2

from workers.actions.base import ActionContext, post
from workers.actions.document import alert_blocks, alert_text, clip, slack_escape
from workers.judging.action_config import SlackAction
from workers.judging.rules import Rules


def send(context: ActionContext) -> str:
    config = context.config
    assert isinstance(config, SlackAction)
    person = context.person(config.include_personal_data)
    subject, body = alert_text(context.decision, config.portal_url, person, context.console_url)
    blocks = alert_blocks(context.decision, config.portal_url, person, context.console_url)
    return deliver(context.http, context.rules, config, subject, body, blocks)


def deliver(
    http: httpx2.Client,
    rules: Rules,
    config: SlackAction,
    subject: str,
    body: str,
    blocks: list[dict[str, Any]] | None = None,
) -> str:
    """Post one message: the subject as its notification text (what Slack shows in a notification
    and where blocks cannot be shown), the blocks (escaped by their maker), else the body as a
    preformatted block. ``subject`` and ``body`` are plain text: escaped here."""
    preformatted = {"type": "mrkdwn", "text": f"```{clip(slack_escape(body), 2994)}```", "verbatim": True}
    payload = {
        "text": slack_escape(subject),
        "blocks": blocks or [{"type": "section", "text": preformatted}],
    }
    return post(http, rules.secret(config.url_env), "Slack", config.timeout_seconds, json=payload)
