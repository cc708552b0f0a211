"""The compliance alert by e-mail, over SMTP (the standard library's smtplib). The Message-ID is
derived from the idempotency key, so a copy sent by a retry can be recognised by the mail system."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from service.errors import ActionFailed, ActionRejected
from workers.actions import ActionContext
from workers.actions.document import alert_text
from workers.rules import EmailAction


def send(context: ActionContext) -> str:
    config = context.config
    assert isinstance(config, EmailAction)
    decision = context.decision
    subject, body = alert_text(decision, config.portal_url, context.person(config.include_personal_data))
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Message-ID"] = f"<{context.idempotency_key}@cubehook>"
    message.set_content(body)
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_seconds) as smtp:
            if config.starttls:
                smtp.starttls()
            if config.username_env and config.password_env:
                smtp.login(
                    context.rules.secret(config.username_env), context.rules.secret(config.password_env)
                )
            refused = smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise ActionFailed(f"SMTP server answered {exc.smtp_code}") from None
        raise ActionRejected(f"SMTP server refused it: {exc.smtp_code}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise ActionFailed(f"SMTP server unreachable: {type(exc).__name__}") from None
    if refused:
        raise ActionRejected(f"SMTP server refused {len(refused)} recipient(s)")
    return f"mailed {len(config.recipients)} recipient(s) via {config.smtp_host}:{config.smtp_port}"
