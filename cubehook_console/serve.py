"""`cubehook console`: the console's one listener (uvicorn), and `cubehook console add-user`.

It binds CUBEHOOK_CONSOLE_HOST (127.0.0.1) unless told otherwise, with the web process's bounds on
request heads, and reads no proxy header unless the peer is a trusted proxy (cubehook_console.auth
does that itself: uvicorn's proxy_headers would rewrite the peer before the console could check it).
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping

import uvicorn

from cubehook_console.app import build_app
from cubehook_console.settings import ConsoleSettings
from cubehook_console.users import Actor, Role, Trail, UserStore
from service.head_limits import LimitedHttpToolsProtocol
from service.log import env_file_read_said, get_logger
from service.ports import ensure_free
from service.settings import Settings
from workers.audit.store import AuditStore

log = get_logger("cubehook.console")
CONSOLE_LIMIT_CONCURRENCY = 64  # a team's browsers, not the internet


def config(
    settings: Settings, options: ConsoleSettings, environ: Mapping[str, str] | None = None
) -> uvicorn.Config:
    """Raises ConfigError (no signing key, a bad rules file) before anything is bound."""
    app = build_app(settings, options, environ)
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_config=None,  # logging is ours (service.log): one format, redacted
        access_log=settings.access_log,
        proxy_headers=False,
        http=LimitedHttpToolsProtocol.with_limits(settings.max_head_bytes, settings.head_timeout_seconds),
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        limit_concurrency=CONSOLE_LIMIT_CONCURRENCY,
    )


def run(settings: Settings, options: ConsoleSettings) -> None:
    from workers.outages import HEALTH

    HEALTH.speaks = True  # the console waits out Redis or the database at start, saying so once
    ensure_free(options.host, options.port, "CUBEHOOK_CONSOLE_PORT")
    served = config(settings, options)
    log.info(
        "console.start", host=options.host, port=options.port, sso=bool(options.sso_header),
        env_file=env_file_read_said(),
    )  # fmt: skip
    uvicorn.Server(served).run()


def add_user(settings: Settings, name: str, role: Role, password: str | None) -> bool:
    """Add a user (or change one's role and password); on the trail as the OS user's doing."""
    audit = AuditStore.from_url(settings.database_url)
    try:
        audit.migrate()
        added = UserStore(audit.engine).add(name, role, password)
        by = Actor(f"{getpass.getuser()} (command line)", "local")
        detail = f"{name}: {role.value}, {'a password' if password else 'single sign-on only'}"
        Trail(audit.engine).record(by, "add_user" if added else "update_user", name, True, detail)
        return added
    finally:
        audit.engine.dispose()
