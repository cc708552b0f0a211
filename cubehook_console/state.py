"""What the console process builds once and its pages share (``Console``, found from a request by
``console_of``), and its pages' templates (package data: no CDN, no script, no build step).

It reads the audit trail and Redis, and writes only through the workers' own code paths: a
person's decision (workers.manual: the dispatcher queues its actions), a dead letter's replay
(workers.operations), a quarantined delivery's replay (service.intake), the webhook's re-enabling
(the workers' ComplyCube client).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue
from starlette.requests import Request
from starlette.responses import HTMLResponse

from cubehook_console.auth import Auth, Who
from cubehook_console.settings import ConsoleSettings
from cubehook_console.users import Trail, UserStore
from service.intake import Intake
from service.quarantine import Quarantine
from service.redis import async_redis_client, redis_client
from service.rq_jobs import rq_queue
from service.settings import Settings
from workers.audit.store import AuditStore
from workers.dispatch import Dispatcher
from workers.judging.rules import load_rules
from workers.manual import ManualDecisions
from workers.outages import wait_until_reachable
from workers.sessions import SessionStore


@dataclass
class Console:
    """What the console builds once and its pages share."""

    settings: Settings
    options: ConsoleSettings
    redis: Redis
    audit: AuditStore
    users: UserStore
    trail: Trail
    auth: Auth
    manual: ManualDecisions
    queue: Queue
    templates: Environment
    # The intake's asyncio clients belong to the event loop that made them: one per loop (uvicorn
    # runs one; a test client may run several).
    _intakes: dict[int, tuple[AsyncRedis, Intake | None, Quarantine]] = field(default_factory=dict)

    @property
    def can_replay(self) -> bool:
        """Replaying a quarantined delivery checks its signature: it needs the webhook secrets."""
        return bool(self.settings.webhook_secrets)

    def intake(self) -> tuple[Intake | None, Quarantine]:
        """The intake (None without CUBEHOOK_WEBHOOK_SECRETS) and the quarantine, on this loop."""
        loop = id(asyncio.get_running_loop())
        if loop not in self._intakes:
            settings = self.settings
            aredis = async_redis_client(settings)
            intake = Intake.build(settings, self.redis, aredis) if self.can_replay else None
            quarantine = Quarantine(aredis, settings.quarantine_max_items, settings.quarantine_max_bytes,
                                    settings.quarantine_retention_seconds)  # fmt: skip
            self._intakes[loop] = (aredis, intake, quarantine)
        _, intake, quarantine = self._intakes[loop]
        return intake, quarantine

    @classmethod
    def build(cls, settings: Settings, options: ConsoleSettings, environ: Mapping[str, str]) -> Console:
        """Raises ConfigError: no signing key, no decision key, or a rules file that does not validate."""
        options.signing_key()  # before anything else: no key, no console
        settings.decision_seal_keys()  # a person's decisions are sealed as the workers' are
        # The rules only plan a person's decision's actions here (by name): the workers, which
        # send them, hold the secrets they name.
        rules = load_rules(
            settings.rules_file, environ, settings.allow_insecure_transport, require_secrets=False,
            callable_packages=settings.callable_packages,
        )  # fmt: skip
        redis = redis_client(settings)
        audit = AuditStore.from_settings(settings)
        wait_until_reachable(redis, audit.needs_migration)
        audit.migrate(lock=redis)
        queue = rq_queue(settings.queue_name, redis)
        dispatcher = Dispatcher.from_settings(settings, rules, queue)
        store = SessionStore.from_settings(settings, redis)
        users = UserStore(audit.engine)
        return cls(
            settings,
            options,
            redis,
            audit,
            users,
            Trail(audit.engine),
            Auth(options, users, redis, settings.console_url),
            ManualDecisions(store, audit, dispatcher),
            queue,
            templates(),
        )

    async def close(self) -> None:
        for aredis, _, _ in self._intakes.values():
            await aredis.aclose()
        self._intakes.clear()
        self.redis.close()
        self.audit.engine.dispose()

    def page(
        self, request: Request, who: Who, template: str, status: int = 200, **context: object
    ) -> HTMLResponse:
        """A page, for ``who``; (re)issues their session cookie when it needs to."""
        html = self.templates.get_template(template).render(who=who, path=request.url.path, **context)
        response = HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})
        if who.renew:
            self.auth.issue(response, who, who.user.name if who.user else None, who.csrf)
        return response


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("cubehook_console", "templates"),
        autoescape=select_autoescape(default=True),
        auto_reload=False,
    )
    env.filters["when"] = when
    return env


def when(value: object) -> str:
    """A time as the pages show it: UTC, to the second."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
        except ValueError:
            return value
    return "-"


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console
