"""The compliance alert by e-mail (workers.actions.smtp: verified TLS, credentials only inside it).
The Message-ID is derived from the idempotency key, so a copy sent by a retry can be recognised by
the mail system."""

from __future__ import annotations

from workers.actions import smtp
from workers.actions.base import ActionContext
from workers.actions.document import alert_text
from workers.judging.action_config import EmailAction


def send(context: ActionContext) -> str:
    config = context.config
    assert isinstance(config, EmailAction)
    subject, body = alert_text(
        context.decision, config.portal_url, context.person(config.include_personal_data), context.console_url
    )
    message = smtp.compose(config, subject, body, message_id=f"<{context.idempotency_key}@cubehook>")
    return smtp.send(config, context.rules, message)
