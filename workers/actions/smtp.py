"""Mail over SMTP, one way for every sender: the e-mail action and the watchdog's notices.

The connection is TLS before anything else is said: STARTTLS (RFC 3207) or TLS from the first
byte (RFC 8314), with the server's certificate verified and its name checked against
``smtp_host``. ``smtplib.starttls()`` without a context does neither on Python 3.11 (it takes
``ssl._create_stdlib_context``, which verifies nothing), so the context here is always
``ssl.create_default_context``: the system's CAs, or only the action's ``ca_file`` for a private
relay. A server that offers no STARTTLS, or a certificate that does not verify, ends the
connection before the login: credentials never travel in clear, nor to the wrong server.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from service.errors import ActionFailed, ActionRejected
from workers.judging.action_config import EmailAction
from workers.judging.rules import Rules


def compose(config: EmailAction, subject: str, body: str, message_id: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    if message_id is not None:
        message["Message-ID"] = message_id
    message.set_content(body)
    return message


def tls_context(config: EmailAction) -> ssl.SSLContext:
    """Verifies the chain and the host name (``create_default_context`` sets CERT_REQUIRED and
    check_hostname). With a ``ca_file``, that file is the only trust: the relay's own CA."""
    return ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)


def send(config: EmailAction, rules: Rules, message: EmailMessage) -> str:
    """Send ``message``; ActionFailed (try again later) or ActionRejected (a person must look)."""
    where = f"{config.smtp_host}:{config.smtp_port}"
    if config.mode == "none" and config.credentials:
        # The rules file cannot say this (validated at start); a config built in code must not either.
        raise ActionRejected("SMTP credentials are never sent without TLS")
    try:
        with _connect(config) as smtp:
            if config.mode == "starttls":
                smtp.starttls(context=tls_context(config))
            if config.credentials:
                username_env, password_env = config.credentials
                smtp.login(rules.secret(username_env), rules.secret(password_env))
            refused = smtp.send_message(message)
    except ssl.SSLCertVerificationError as exc:
        # Someone else's server, or a relay whose CA is not trusted: retrying changes nothing.
        raise ActionRejected(f"SMTP server {where}: certificate not trusted ({exc.verify_message})") from None
    except smtplib.SMTPNotSupportedError:
        raise ActionRejected(f"SMTP server {where} does not offer STARTTLS: nothing was sent") from None
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise ActionFailed(f"SMTP server answered {exc.smtp_code}") from None
        raise ActionRejected(f"SMTP server refused it: {exc.smtp_code}") from None
    except (OSError, smtplib.SMTPException) as exc:  # ssl.SSLError is an OSError: a broken handshake
        raise ActionFailed(f"SMTP server unreachable: {type(exc).__name__}") from None
    if refused:
        raise ActionRejected(f"SMTP server refused {len(refused)} recipient(s)")
    return f"mailed {len(config.recipients)} recipient(s) via {where} ({config.mode})"


def _connect(config: EmailAction) -> smtplib.SMTP:
    if config.mode == "implicit":
        return smtplib.SMTP_SSL(
            config.smtp_host, config.smtp_port, timeout=config.timeout_seconds, context=tls_context(config)
        )
    return smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_seconds)
