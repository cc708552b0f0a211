"""An alert to a Slack incoming webhook (https://api.slack.com/messaging/webhooks): the outcome,
the template, which checks were not clear and why, and a link to the session. Personal data only
when the rule allows it; by default the client id is the only thing that names the customer."""

from __future__ import annotations

from workers.actions import ActionContext, post
from workers.actions.document import alert_text
from workers.rules import SlackAction


def send(context: ActionContext) -> str:
    config = context.config
    assert isinstance(config, SlackAction)
    decision = context.decision
    subject, body = alert_text(decision, config.portal_url, context.person(config.include_personal_data))
    payload = {
        "text": subject,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"```{body}```"}}],
    }
    return post(context, context.rules.secret(config.url_env), "Slack", config.timeout_seconds, json=payload)
