"""Console tests: the app against a real Redis and a real audit trail (SQLite, and PostgreSQL where
said), sessions decided by the real pipeline (the ComplyCube simulator, a real RQ worker), and the
actions' target a real HTTP server. Browser tests drive Debian's chromium (test_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cubehook_console.app import create_console_app
from cubehook_console.settings import ConsoleSettings
from cubehook_console.state import Console
from cubehook_console.users import Role, UserStore
from service.log import STDERR, configure_logging
from service.settings import Settings
from tests.conftest import Receiver, SimServer
from tests.jobs.conftest import (
    Pipeline,
    database_url,
    pipeline,
    runtime,
    store,
    worker_settings,
)

__all__ = ["database_url", "pipeline", "runtime", "store", "worker_settings"]

HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PASSWORD = "correct horse battery staple"
RULES = """
[action.onboarding]
type = "webhook"
url = "{url}/decisions"
secret_env = "HOOK_SECRET"

[action.alert]
type = "slack"
url_env = "SLACK_URL"

[[rule]]
name = "every decision to onboarding"
actions = ["onboarding"]

[[rule]]
name = "people's decisions to the team's channel"
when = {{ kind = ["manual"] }}
actions = ["alert"]
"""
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
KEY = re.compile(r'name="key" value="([^"]+)"')
OVER = re.compile(r'name="over" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _loggers_not_pinned() -> Iterator[None]:
    """A command run in a test (CliRunner: `cubehook console ...`) configures structlog to cache each
    logger on first use, which would pin the loggers later tests use first (the intake's) to its
    stream, out of their log capture: configured with a stream again, nothing is cached. The stream
    is whatever sys.stderr is when a line is written (pytest swaps it per test and closes the old)."""
    yield
    configure_logging(Settings(log_format="json"), stream=STDERR)


@pytest.fixture
def runtime_env(receiver: Receiver) -> dict[str, str]:
    return {"HOOK_SECRET": HOOK_SECRET, "SLACK_URL": f"{receiver.url}/slack"}


def with_rules(worker_settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    """The workers' test settings with RULES (each console test module overrides worker_settings
    with it: a conftest cannot override the fixture it brings in)."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(url=receiver.url))
    return worker_settings.model_copy(update={"rules_file": rules, "action_retry_intervals": (0,)})


@pytest.fixture
def options() -> ConsoleSettings:
    return ConsoleSettings(
        secret_key="k" * 40, login_max_failures_per_user=3, login_max_failures_per_address=5, page_size=5
    )


@pytest.fixture
def console(
    worker_settings: Settings, options: ConsoleSettings, runtime_env: dict[str, str], pipeline: Pipeline
) -> Console:
    built = Console.build(worker_settings, options, runtime_env)
    users = UserStore(built.audit.engine)
    for role in Role:
        users.add(role.value, role, PASSWORD)
    return built


@pytest.fixture
def app_client(console: Console) -> Iterator[Callable[..., TestClient]]:
    """TestClients of the console's app (each with its own cookies); closed at the end."""
    clients: list[TestClient] = []

    def make(**kwargs: object) -> TestClient:
        client = TestClient(create_console_app(console), follow_redirects=False, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/login")
    answer = client.post("/login", data={"name": name, "password": password, "csrf": csrf(page.text)})
    assert answer.status_code == 303, answer.text
    return client


def decided(pipeline: Pipeline, sim: SimServer, preset: str) -> str:
    """A session the pipeline decided, from a simulator preset; its actions run."""
    sid: str = sim.create(preset=preset, mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    return sid
