from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from cubehook_dev.devredis import EmbeddedRedis
from service.rq_jobs import rq_queue
from service.settings import Settings
from service.web.app import Apps, create_apps
from workers.scriptload import load_at


@pytest.fixture
def apps(settings: Settings) -> Apps:
    return create_apps(settings)


@pytest.fixture
def client(apps: Apps) -> Iterator[TestClient]:
    """The public app (the webhook, /healthz)."""
    with TestClient(apps.public) as test_client:
        yield test_client


@pytest.fixture
def admin(apps: Apps) -> Iterator[TestClient]:
    """The admin app (/healthz, /readyz, /metrics, /openapi.json), on the public app's Redis client."""
    with TestClient(apps.admin) as test_client:
        yield test_client


@pytest.fixture
def queue(redis: Redis, settings: Settings) -> Queue:
    return rq_queue(settings.queue_name, redis)


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis a test may stop, restart or refuse writes in without disturbing the others, holding
    the intake's scripts as a worker's first tick leaves it."""
    with EmbeddedRedis() as server:
        load_at(server.url)
        yield server
