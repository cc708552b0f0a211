"""What a worker process builds once and its jobs share: settings, Redis, the ComplyCube client
(one connection pool, one fleet-wide rate limiter), the session store, the audit store (migrated
at start), the rules, the processor and the action runner.

The entry point (`cubehook worker`) builds it and installs it; a job run by any other worker (say
a plain `rq worker`) builds it from the environment on first use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx2
from redis import Redis

from service.redis import redis_client
from service.rq_jobs import job_retry, rq_queue
from service.settings import Settings, load_settings
from workers.actions.base import PersonalData
from workers.audit.store import AuditStore
from workers.complycube.client import ComplyCubeClient
from workers.complycube.ratelimit import RateLimiter
from workers.dispatch import ActionRunner, Dispatcher
from workers.judging.judge import Decision
from workers.judging.rules import Rules, load_rules
from workers.outages import DATABASE_ERRORS, wait_until_reachable
from workers.pipeline import SessionProcessor
from workers.sessions import SessionStore


@dataclass
class Runtime:
    """Everything a worker process builds once and its jobs share (see the module's docstring)."""

    settings: Settings
    redis: Redis
    client: ComplyCubeClient
    store: SessionStore
    audit: AuditStore
    rules: Rules
    processor: SessionProcessor
    actions: ActionRunner
    executor: ThreadPoolExecutor

    @classmethod
    def build(
        cls,
        settings: Settings,
        environ: Mapping[str, str],
        transport: httpx2.BaseTransport | None = None,
        wait: bool = False,
    ) -> Runtime:
        """Raises ConfigError for a rules file that does not validate or names unset secrets. With
        ``wait`` (a worker starting), Redis and the database are waited for, however long they are
        away, instead of failing (workers.outages). Raises it too without a decision key (no
        seal, no worker: workers/seal.py)."""
        settings.decision_seal_keys()
        rules = load_rules(
            settings.rules_file, environ, settings.allow_insecure_transport,
            callable_packages=settings.callable_packages,
        )  # fmt: skip
        redis = redis_client(settings)
        audit = AuditStore.from_settings(settings)
        if wait:
            wait_until_reachable(redis, audit.needs_migration)
        migrate_patiently(audit, redis)
        rate = settings.complycube_rate()
        limiter = RateLimiter(redis, rate) if rate else None
        client = ComplyCubeClient.from_settings(settings, limiter, transport)
        store = SessionStore.from_settings(settings, redis)
        # A session's checks come from one list call; any it did not return are fetched at once.
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cubehook-fetch")
        queue = rq_queue(settings.queue_name, redis)
        dispatcher = Dispatcher.from_settings(settings, rules, queue)
        processor = SessionProcessor(
            client, store, queue, settings.pending_recheck_intervals, executor, audit, dispatcher,
            job_retry(settings.job_retry_intervals),
        )  # fmt: skip

        def personal_data(client_id: str) -> PersonalData:
            person = client.get_client(client_id).model
            return PersonalData(person.entity_name, person.email)

        def load_decision(session_id: str, decision_id: str) -> Decision | None:
            # Redis first (a decision the worker died before recording in SQL is only there),
            # then the audit trail (the session's Redis state expired).
            return store.find(session_id, decision_id) or audit.decision(decision_id)

        actions = ActionRunner(
            rules, audit, load_decision, personal_data, httpx2.Client(), settings.console_url
        )
        return cls(settings, redis, client, store, audit, rules, processor, actions, executor)

    def close(self) -> None:
        self.executor.shutdown(wait=False)
        self.actions.http.close()
        self.client.close()
        self.audit.engine.dispose()
        self.redis.close()


def migrate_patiently(audit: AuditStore, redis: Redis, attempts: int = 10) -> None:
    """The schema brought up to date, through a moment's contention: processes starting together on
    one SQLite file can meet "database is locked" (SQLite refuses a reader's upgrade to a writer
    at once, whatever its busy timeout), which a second later is gone."""
    for attempt in range(attempts):
        try:
            audit.migrate(lock=redis)
            return
        except DATABASE_ERRORS:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current  # one runtime per worker process, set by its entry point
    _current = runtime


def current() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime.build(load_settings(), os.environ)
    return _current
