from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from service.app import create_app
from service.queue import rq_queue
from service.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def queue(redis: Redis, settings: Settings) -> Queue:
    return rq_queue(settings.queue_name, redis)
