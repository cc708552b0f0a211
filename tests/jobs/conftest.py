"""Worker tests: a real Redis, the ComplyCube simulator as a real HTTP server, real RQ workers."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from service.events import resource_of
from service.log import get_logger
from service.queue import EventQueue, Submitted
from service.rq_jobs import JOB_OPTIONS, EventRef, rq_queue
from service.settings import Settings
from tests.conftest import SIM_API_KEY, Receiver, SimServer
from workers import backfill, dispatch, jobs, reschedule, worker
from workers import runtime as worker_runtime
from workers.audit.store import AuditStore
from workers.judging.judge import Decision
from workers.runtime import Runtime


@pytest.fixture
def worker_settings(make_settings: Callable[..., Settings], sim: SimServer, tmp_path: Path) -> Settings:
    return make_settings(
        database_url=f"sqlite:///{tmp_path}/audit.db",
        complycube_base_url=f"{sim.url}/v1",
        allow_insecure_transport=True,  # the simulator and the receivers speak plain HTTP
        complycube_api_key=SIM_API_KEY,
        complycube_rate_limit=0,
        complycube_max_attempts=2,
        complycube_retry_budget_seconds=1,
        job_retry_intervals="0,0",
        pending_recheck_intervals="1,1",
        session_lock_seconds=3,
        event_defer_seconds=0,  # every event looked at at once; tests of deferral set it
        outage_patience_seconds=0,  # an outage spends retries at once; tests of outages set it
    )


@pytest.fixture
def logs(log_output: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """``log_output``, with the loggers of the modules under test made afresh: a command run earlier
    in this process (CliRunner) configured structlog to cache each logger on first use, which pins
    a module's logger to that command's stream."""
    modules = ((backfill, "cubehook.backfill"), (reschedule, "cubehook.reschedule"),
               (worker, "cubehook.worker"), (dispatch, "cubehook.dispatch"), (jobs, "cubehook.jobs"))  # fmt: skip
    for module, name in modules:
        monkeypatch.setattr(module, "log", get_logger(name))
    return log_output


@pytest.fixture
def runtime_env() -> dict[str, str]:
    """The environment the runtime reads the rules' secrets from."""
    return {}


@pytest.fixture
def runtime(worker_settings: Settings, runtime_env: dict[str, str]) -> Iterator[Runtime]:
    built = Runtime.build(worker_settings, runtime_env)
    worker_runtime.install(built)
    yield built
    worker_runtime.install(None)
    built.close()


@dataclass
class Pipeline:
    """The intake's queue and an in-process SimpleWorker, both on the private Redis."""

    runtime: Runtime
    settings: Settings
    redis: Redis
    _events: int = 0

    @property
    def queue(self) -> Queue:
        return rq_queue(self.settings.queue_name, self.redis)

    def submit(
        self,
        resource_id: str,
        event_type: str = "workflowSession.completed",
        event_id: str | None = None,
        expect: Submitted = Submitted.ACCEPTED,
    ) -> str:
        self._events += 1
        event_id = event_id or f"evt{self._events:04d}{resource_id[:8]}"
        resource = resource_of(None, event_type)
        ref = EventRef(event_id, event_type, resource.value, resource_id, "2025-01-13T11:39:30.500Z")
        submitted = EventQueue(self.redis, self.settings).submit(ref)
        assert submitted is expect
        return event_id

    def work(self) -> None:
        SimpleWorker([self.queue], connection=self.redis, **JOB_OPTIONS).work(burst=True)

    def decisions(self, session_id: str) -> list[Decision]:
        return self.runtime.store.history(session_id)

    def results(self) -> list[dict[str, Any]]:
        """The results of the jobs that processed events or sessions (not actions, not records)."""
        out = []
        for job_id in self.queue.finished_job_registry.get_job_ids():
            job = self.queue.fetch_job(job_id)
            assert job is not None
            if job.func_name not in ("workers.jobs.process_event", "workers.jobs.process_session"):
                continue
            result = job.return_value()
            assert isinstance(result, dict)
            out.append(result)
        return out


@pytest.fixture
def pipeline(runtime: Runtime, worker_settings: Settings, redis: Redis) -> Pipeline:
    return Pipeline(runtime, worker_settings, redis)


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The audit trail's database: a SQLite file, then a throwaway PostgreSQL database on
    127.0.0.1:5432 (the test is skipped, visibly, when that is not reachable)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/audit.db"
        return
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import secrets

    name = f"cubehook_test_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'drop database "{name}" with (force)'))
        admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[AuditStore]:
    audit = AuditStore.from_url(database_url)
    audit.migrate()
    yield audit
    audit.engine.dispose()


def webhook_rules(receiver: Receiver) -> str:
    """A rules file sending every decision to ``receiver``'s /decisions, signed with HOOK_SECRET."""
    return f"""
[action.onboarding]
type = "webhook"
url = "{receiver.url}/decisions"
secret_env = "HOOK_SECRET"

[[rule]]
name = "every decision"
actions = ["onboarding"]
"""
