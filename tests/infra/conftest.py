"""Fixtures of the infrastructure fault suite: the servers each test owns (Redis, a Sentinel group,
PostgreSQL), the action target, and the system started on them; on a failure, the last lines of
every process's log."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from redis import Redis

from service.redis import async_redis_client, redis_client
from service.settings import Settings
from tests.conftest import SECRET, serving
from tests.infra.load import TimedReceiver
from tests.infra.servers import PostgresServer, RedisProcess, SentinelGroup, postgres_bin
from tests.infra.stack import Stack


class Launch(Protocol):
    def __call__(
        self, redis_url: str, redis: Callable[[], Redis], database_url: str, **settings: str
    ) -> Stack: ...


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def target() -> Iterator[TimedReceiver]:
    """The action target: a real HTTP server the workers' rules send each decision to."""
    receiver = TimedReceiver()
    with serving(receiver.app()) as port:
        receiver.url = f"http://127.0.0.1:{port}"
        yield receiver


@pytest.fixture
def launch(request: pytest.FixtureRequest, target: TimedReceiver, tmp_path: Path) -> Iterator[Launch]:
    """``launch(redis_url, redis_client, database_url, **settings)``: the system started on that
    Redis and that database (and CUBEHOOK_ ``settings``); stopped at the end, its logs' tails
    printed if the test failed."""
    stacks: list[Stack] = []

    def start(redis_url: str, redis: Callable[[], Redis], database_url: str, **settings: str) -> Stack:
        stack = Stack(tmp_path, redis_url, redis, database_url, target, settings=settings)
        stacks.append(stack)
        stack.start()
        return stack

    yield start
    for stack in stacks:
        if request.node.stash.get(FAILED, True):
            print(f"\nlast lines of each process (exit status None: still running):\n{stack.tails()}")
        stack.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/audit.db"


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """Redis as production runs it (deploy/redis/redis.conf): the append-only file on."""
    server = RedisProcess(tmp_path, "redis", durable=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """Redis without persistence: a restart brings it back empty."""
    server = RedisProcess(tmp_path, "redis", durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary, a replica and three sentinels; skipped, saying why, while cubehook cannot build a
    client from a redis+sentinel:// URL (branch `sentinel`)."""
    group = SentinelGroup(tmp_path)
    try:
        settings = Settings(redis_url=group.url, webhook_secrets=SECRET)
        redis_client(settings).close()
        async_redis_client(settings)  # the web process's; nothing to close before a first command
    except Exception as exc:  # whatever the refusal: the URL form is not there yet
        pytest.skip(
            f"cubehook cannot build a Redis client from {group.url} yet ({type(exc).__name__}: {exc})"
        )
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL the test owns; skipped, saying why, where there is none to run."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb not found under /usr/lib/postgresql/*/bin: install postgresql")
    server = PostgresServer(bindir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.close()
