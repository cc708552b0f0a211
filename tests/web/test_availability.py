"""Redis outages: never a 2xx for an event that is not queued; probes tell the truth."""

from __future__ import annotations

import asyncio

import httpx2
from redis import Redis
from starlette.testclient import TestClient

from cubehook_dev.devredis import EmbeddedRedis
from service.queue import seen_key
from service.rq_jobs import rq_queue
from service.settings import Settings
from service.web.app import create_app, create_apps
from tests.conftest import SECRET, event_body, signature
from workers.scriptload import load_at

URL = "/webhooks/complycube"


def _settings(url: str) -> Settings:
    return Settings(redis_url=url, webhook_secrets=SECRET, redis_timeout_seconds=0.5)


def test_redis_down_is_503_then_accepted_once_back(own_redis: EmbeddedRedis) -> None:
    body = event_body(event_id="outage-1")
    apps = create_apps(_settings(own_redis.url))
    with TestClient(apps.public) as client, TestClient(apps.admin) as admin:
        assert (
            client.post(
                URL, content=event_body(event_id="before"), headers=signature(event_body(event_id="before"))
            ).status_code
            == 202
        )
        own_redis.stop()
        down = client.post(URL, content=body, headers=signature(body))
        assert down.status_code == 503
        assert down.json()["error"] == "queue_unavailable"
        assert down.headers["retry-after"] == "60"
        assert admin.get("/readyz").status_code == 503
        assert admin.get("/healthz").status_code == 200
        assert client.get("/healthz").status_code == 200

        own_redis.start()  # empty again: it keeps nothing on disk, like a fresh replacement
        redis = Redis.from_url(own_redis.url)
        assert redis.exists(seen_key("outage-1")) == 0  # the refused event was never marked seen
        assert admin.get("/readyz").status_code == 200
        # Empty: no scripts either, and the web may not load them. 503 until a worker has.
        early = client.post(URL, content=body, headers=signature(body))
        assert early.status_code == 503
        assert redis.exists(seen_key("outage-1")) == 0
        load_at(own_redis.url)  # a worker's tick
        again = client.post(URL, content=body, headers=signature(body))
        assert again.status_code == 202
        assert rq_queue("cubehook", redis).job_ids == ["evt-outage-1"]
        redis.close()


def test_a_failed_transaction_leaves_no_seen_key(own_redis: EmbeddedRedis) -> None:
    """Redis refuses writes (as when it is out of memory or a read-only replica): no half state."""
    admin = Redis.from_url(own_redis.url)
    body = event_body(event_id="refused-1")
    with TestClient(create_app(_settings(own_redis.url))) as client:
        admin.config_set("min-replicas-to-write", 1)  # no replica: every write is refused
        try:
            assert client.post(URL, content=body, headers=signature(body)).status_code == 503
        finally:
            admin.config_set("min-replicas-to-write", 0)
        assert admin.exists(seen_key("refused-1")) == 0
        assert client.post(URL, content=body, headers=signature(body)).status_code == 202
    admin.close()


def test_a_slow_redis_does_not_stall_other_requests(own_redis: EmbeddedRedis) -> None:
    """While one enqueue waits on a paused Redis, /healthz is still answered first."""
    app = create_app(Settings(redis_url=own_redis.url, webhook_secrets=SECRET, redis_timeout_seconds=5))
    admin = Redis.from_url(own_redis.url)
    body = event_body(event_id="slow-1")
    finished: list[str] = []

    async def scenario() -> None:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:

            async def webhook() -> None:
                response = await http.post(URL, content=body, headers=signature(body))
                assert response.status_code == 202
                finished.append("webhook")

            async def health() -> None:
                await asyncio.sleep(0.2)  # the webhook is blocked in Redis by now
                response = await http.get("/healthz")
                assert response.status_code == 200
                finished.append("healthz")

            await asyncio.gather(webhook(), health())

    admin.client_pause(1500, all=True)
    asyncio.run(scenario())
    assert finished == ["healthz", "webhook"]
    admin.close()


def test_an_ignored_event_is_still_200_when_redis_is_down(own_redis: EmbeddedRedis) -> None:
    """Acknowledged even if its audit record cannot be queued: a 5xx would make ComplyCube retry
    and, in the end, disable the webhook for an event cubehook does not act on."""
    body = event_body(event_id="ignored-1", event_type="client.updated", resource_type="client")
    with TestClient(create_app(_settings(own_redis.url))) as client:
        own_redis.stop()
        response = client.post(URL, content=body, headers=signature(body))
        assert response.status_code == 200
        assert response.json()["status"] == "ignored"
