"""Shared fixtures. The suite starts its own private Redis server on a free port (never the
machine's 6379) and stops it at the end; each test starts with an empty database."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from service.devredis import EmbeddedRedis
from service.log import configure_logging
from service.settings import Settings
from service.signature import sign

ROOT = Path(__file__).resolve().parent.parent
# Sample ComplyCube payloads rebuilt from the public API reference; tests read them, never edit them.
FIXTURES = ROOT / "tests" / "fixtures"
SECRET = "whsec_test_primary"
OTHER_SECRET = "whsec_test_rotated"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    client = Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def make_settings(redis_url: str) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"redis_url": redis_url, "webhook_secrets": SECRET, "log_format": "json"}
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def log_output(settings: Settings) -> io.StringIO:
    """Everything logged during the test, as JSON lines."""
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    return stream


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signature(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"ComplyCube-Signature": sign(body, secret.encode())}


def event_body(
    event_id: str = "68a0c2f1e4b0a1000812ab34",
    event_type: str = "workflowSession.completed",
    resource_type: str = "workflowSession",
    session_id: str = "5eb2b61e02df0a0008f1cf2a",
    **payload: Any,
) -> bytes:
    document = json.loads(fixture_bytes("event-workflow-session-completed.json"))
    document.update(id=event_id, type=event_type, resourceType=resource_type)
    document["payload"].update(id=session_id, **payload)
    return json.dumps(document).encode()
