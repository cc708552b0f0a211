"""The intake answers 2xx only once a replica holds the event (WAIT), else 503, and a retry once
the replica is back keeps the event exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from redis import Redis
from starlette.testclient import TestClient

from service.metrics import WEB
from service.rq_jobs import job_id_for, rq_queue
from service.settings import Settings
from service.web.app import create_app
from tests.conftest import event_body, signature
from tests.redis_ha.conftest import Replicated, wait_until

pytestmark = pytest.mark.timeout(90)


@contextmanager
def intake(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def post(client: TestClient, event_id: str) -> int:
    body = event_body(event_id=event_id)
    return client.post("/webhooks/complycube", content=body, headers=signature(body)).status_code


def shortfalls() -> float:
    return WEB.get_sample_value("cubehook_redis_wait_shortfalls_total") or 0.0


def test_auto_answers_202_once_the_replica_has_the_event(replicated: Replicated) -> None:
    with intake(replicated.settings()) as client:
        assert post(client, "68a0c2f1e4b0a10008120001") == 202
    replica = replicated.replica.client()
    seen = [k for k in replica.keys("cubehook:seen:*")]
    assert len(seen) == 1  # WAIT returned: the replica holds it already, no polling needed


def test_too_few_replicas_is_a_503_and_the_retry_keeps_the_event_once(replicated: Replicated) -> None:
    settings = replicated.settings(redis_min_replicas=1, redis_wait_timeout_ms=100)
    event_id = "68a0c2f1e4b0a10008120002"
    replicated.replica.stop()
    primary = replicated.primary.client()
    wait_until(
        lambda: primary.info("replication")["connected_slaves"] == 0, 10, "the primary lost its replica"
    )
    before = shortfalls()
    with intake(settings) as client:
        assert post(client, event_id) == 503  # written on the primary, held by no replica
        assert shortfalls() == before + 1
        replicated.replica.start()
        replica = replicated.replica.client()
        wait_until(
            lambda: replica.info("replication")["master_link_status"] == "up", 10, "the replica is back"
        )
        assert post(client, event_id) == 200  # the same primary: seen, and now held by the replica
    queue = rq_queue(settings.queue_name, Redis(port=replicated.primary.port))
    assert queue.job_ids.count(job_id_for(event_id)) == 1  # kept once, never twice
