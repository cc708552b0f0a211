"""What `cubehook dev` (make run) needs to start the console: a signing key made for the run, a
development user with a fresh password, and the line it prints. Development only."""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass

from cubehook_console.users import Role, UserStore
from workers.audit.store import AuditStore

DEV_USER = "dev"


@dataclass(frozen=True)
class DevConsole:
    url: str
    line: str  # what `cubehook dev` prints


def dev_console(env: MutableMapping[str, str], port: int) -> DevConsole:
    """Set the console's key and port in ``env`` (the processes' environment; a key already set is
    kept), and add the development user, an operator, with a fresh password, to the audit trail
    ``env`` names. Alerts link to this console (CUBEHOOK_CONSOLE_URL) unless set otherwise."""
    env.setdefault("CUBEHOOK_CONSOLE_SECRET_KEY", secrets.token_hex(32))
    env.setdefault("CUBEHOOK_CONSOLE_PORT", str(port))
    url = f"http://127.0.0.1:{env['CUBEHOOK_CONSOLE_PORT']}"
    env.setdefault("CUBEHOOK_CONSOLE_URL", url)
    password = secrets.token_urlsafe(12)
    audit = AuditStore.from_url(env.get("CUBEHOOK_DATABASE_URL", "sqlite:///var/cubehook.db"))
    try:
        audit.migrate()
        UserStore(audit.engine).add(DEV_USER, Role.OPERATOR, password)
    finally:
        audit.engine.dispose()
    return DevConsole(url, f"  console:   {url}  (log in as {DEV_USER} / {password})\n")
