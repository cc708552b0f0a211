"""A real SMTP server (aiosmtpd) for the tests: what it received, and every AUTH it was sent."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from cubehook_dev.devredis import free_port

LOGIN, PASSWORD = "alerts", "s3cret-password"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class MailServer:
    port: int
    inbox: Inbox
    auths: list[tuple[str, bytes]] = field(default_factory=list)  # (mechanism, login) per AUTH

    def authenticate(
        self, _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        login = data.login if isinstance(data, LoginPassword) else b""
        self.auths.append((mechanism, login))
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            LOGIN.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok)


@contextmanager
def mail_server(
    starttls: ssl.SSLContext | None = None,
    implicit: ssl.SSLContext | None = None,
    auth_in_clear: bool = False,
) -> Iterator[MailServer]:
    """``starttls``: offers STARTTLS with this context; ``implicit``: TLS from the first byte;
    neither: plain SMTP. AUTH is offered inside TLS only, unless ``auth_in_clear`` (a careless
    server, to prove that the client refuses, not the server)."""
    server = MailServer(free_port(), Inbox())
    controller = Controller(
        server.inbox,
        hostname="127.0.0.1",
        port=server.port,
        tls_context=starttls,
        ssl_context=implicit,
        authenticator=server.authenticate,
        auth_require_tls=not auth_in_clear and implicit is None,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
