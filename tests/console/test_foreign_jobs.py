"""A job cubehook did not queue, in the dead-letter queue (RQ's failed registry): a job pickled by
RQ's default serializer, which cubehook (JSON only) cannot even read. The operations page and
`cubehook dlq list` show it as a foreign job that will not run; replaying it is refused, with the
reason, from the page and from `cubehook dlq replay`; the rest of the queue is unaffected."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from cubehook_cli import main
from cubehook_console.state import Console
from service.rq_jobs import rq_queue
from service.settings import Settings
from tests.conftest import Receiver
from tests.console.conftest import csrf, login, with_rules

FOREIGN = "foreign-pickled-1"
NOT_READ = "cannot be read as one of cubehook's jobs"


@pytest.fixture
def worker_settings(worker_settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    return with_rules(worker_settings, receiver, tmp_path)


@pytest.fixture
def foreign(worker_settings: Settings, redis: Redis) -> str:
    """A pickled job (RQ's default serializer) in the failed registry of cubehook's queue."""
    pickled = Queue(worker_settings.queue_name, connection=redis)
    job = pickled.create_job("os.getcwd", job_id=FOREIGN, meta={"by": "someone else"})
    job.save()
    pickled.failed_job_registry.add(job, exc_string="Traceback (most recent call last):\nValueError: boom")
    assert FOREIGN in rq_queue(worker_settings.queue_name, redis).failed_job_registry
    return FOREIGN


@pytest.fixture
def cli(worker_settings: Settings) -> CliRunner:
    return CliRunner(
        env={
            "CUBEHOOK_REDIS_URL": worker_settings.redis_url,
            "CUBEHOOK_DATABASE_URL": worker_settings.database_url,
            "CUBEHOOK_QUEUE_NAME": worker_settings.queue_name,
        }
    )


def test_the_operations_page_shows_a_foreign_job_and_refuses_its_replay(
    console: Console, app_client: Callable[..., TestClient], foreign: str, redis: Redis
) -> None:
    operator = login(app_client(), "operator")
    page = operator.get("/operations")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert foreign in text
    assert NOT_READ in text
    assert "will not run" in text
    assert f"/operations/dead-letters/{foreign}/replay" not in text  # no button for it
    refused = operator.post(f"/operations/dead-letters/{foreign}/replay", data={"csrf": csrf(page.text)})
    assert refused.status_code == 409
    assert NOT_READ in html.unescape(refused.text)
    assert foreign in rq_queue(console.settings.queue_name, redis).failed_job_registry  # kept


def test_dlq_list_shows_it_and_replay_refuses_it(
    console: Console, cli: CliRunner, foreign: str, redis: Redis
) -> None:
    listed = cli.invoke(main, ["dlq", "list"])
    assert listed.exit_code == 0, listed.output
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(foreign)]
    assert f"{foreign}  foreign  {NOT_READ}" in line
    assert "will not run" in line
    shown = cli.invoke(main, ["dlq", "show", foreign])
    assert shown.exit_code == 0, shown.output
    assert "kind:      foreign" in shown.stdout
    replayed = cli.invoke(main, ["dlq", "replay", foreign])
    assert replayed.exit_code == 1
    assert f"job {foreign} {NOT_READ}" in replayed.output
    assert "not replayed" in replayed.output
    every = cli.invoke(main, ["dlq", "replay", "--all"])
    assert every.exit_code == 0, every.output
    assert "0 job(s) re-queued" in every.stdout
    assert f"job {foreign} {NOT_READ}" in every.stderr
    assert Queue("cubehook", connection=redis).count == 0  # nothing of it was queued
