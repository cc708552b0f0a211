"""Operational notices (the watchdog's) through the alert actions: Slack, e-mail or a log line."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import httpx2

from service.errors import ActionFailed
from service.log import get_logger
from workers.actions import check_answer
from workers.rules import EmailAction, LogAction, Rules, SlackAction

log = get_logger("cubehook.notice")


def notify(rules: Rules, http: httpx2.Client, subject: str, body: str) -> list[str]:
    """Send to every watchdog action; returns what happened to each (a failure does not stop the others)."""
    results = []
    for name in rules.file.watchdog.actions:
        config = rules.file.action[name]
        try:
            if isinstance(config, SlackAction):
                response = http.post(rules.secret(config.url_env), json={"text": f"{subject}\n{body}"},
                                     timeout=config.timeout_seconds)  # fmt: skip
                results.append(f"{name}: {check_answer(response, 'Slack')}")
            elif isinstance(config, EmailAction):
                _mail(config, rules, subject, body)
                results.append(f"{name}: mailed")
            elif isinstance(config, LogAction):
                log.warning("notice", subject=subject, body=body)
                results.append(f"{name}: logged")
        except (ActionFailed, httpx2.HTTPError, OSError, smtplib.SMTPException) as exc:
            log.warning("notice.failed", action=name, error=str(exc))
            results.append(f"{name}: failed ({exc})")
    return results


def _mail(config: EmailAction, rules: Rules, subject: str, body: str) -> None:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, config.sender, ", ".join(config.recipients)
    message.set_content(body)
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_seconds) as smtp:
        if config.starttls:
            smtp.starttls()
        if config.username_env and config.password_env:
            smtp.login(rules.secret(config.username_env), rules.secret(config.password_env))
        smtp.send_message(message)
