"""An alert to a Slack incoming webhook (https://api.slack.com/messaging/webhooks): the outcome,
the template, which checks were not clear and why, and a link to the session. Personal data only
when the rule allows it; by default the client id is the only thing that names the customer."""

from __future__ import annotations

import httpx2

from workers.action_config import SlackAction
from workers.actions import ActionContext, post
from workers.actions.document import alert_text
from workers.rules import Rules


def send(context: ActionContext) -> str:
    config = context.config
    assert isinstance(config, SlackAction)
    subject, body = alert_text(
        context.decision, config.portal_url, context.person(config.include_personal_data)
    )
    return deliver(context.http, context.rules, config, subject, body)


def deliver(http: httpx2.Client, rules: Rules, config: SlackAction, subject: str, body: str) -> str:
    """Post one message: the subject as its notification text, the body as a preformatted block."""
    payload = {
        "text": subject,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"```{body}```"}}],
    }
    return post(http, rules.secret(config.url_env), "Slack", config.timeout_seconds, json=payload)
