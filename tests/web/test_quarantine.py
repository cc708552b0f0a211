"""Issue 11, part 2: a correctly signed delivery that cannot be read is answered 2xx and kept
whole, within bounds; a replay puts it through the intake again. Real Redis throughout."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from redis import Redis
from starlette.testclient import TestClient

from cubehook_dev.devredis import EmbeddedRedis
from service import quarantine
from service.events import Flaw
from service.intake import Intake, run_with_intake
from service.metrics import WEB
from service.quarantine import INDEX, ITEM, Item
from service.rq_jobs import rq_queue
from service.settings import Settings
from service.web.app import create_app
from tests.conftest import OTHER_SECRET, SECRET, signature

URL = "/webhooks/complycube"
T = TypeVar("T")

# Each signed, each unreadable for its own reason.
UNREADABLE = {
    "not-json": (b"{not json", Flaw.NOT_JSON),
    "invalid-utf8": (b"\xff\xfe not utf-8", Flaw.NOT_JSON),
    "array": (b'[{"id": "e1", "type": "workflow.session.completed"}]', Flaw.NOT_OBJECT),
    "string": (b'"just a string"', Flaw.NOT_OBJECT),
    "no-id": (b'{"type": "workflow.session.completed", "payload": {"id": "s1"}}', Flaw.MISSING_FIELDS),
    "session-without-payload-id": (
        b'{"id": "e1", "type": "workflow.session.completed", "payload": {"status": "complete"}}',
        Flaw.MISSING_FIELDS,
    ),
    "check-with-numeric-payload-id": (
        b'{"id": "e1", "type": "check.completed", "payload": {"id": 42}}',
        Flaw.INVALID_FIELDS,
    ),
}


def held(redis: Redis) -> list[str]:
    return [raw.decode() for raw in redis.zrange(INDEX, 0, -1)]  # type: ignore[union-attr]


def intake_run(settings: Settings, action: Callable[[Intake], Awaitable[T]]) -> T:
    return run_with_intake(settings, action)


def get(settings: Settings, item_id: str) -> Item | None:
    return intake_run(settings, lambda intake: intake.quarantine.get(item_id))


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return WEB.get_sample_value(name, labels or {}) or 0.0


def assert_nothing_queued(redis: Redis) -> None:
    assert rq_queue("cubehook", redis).count == 0
    assert redis.keys("cubehook:seen:*") == []


@pytest.mark.parametrize(("body", "flaw"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_signed_unreadable_body_is_answered_202_and_kept_whole(
    client: TestClient, redis: Redis, settings: Settings, body: bytes, flaw: Flaw
) -> None:
    before = (time.time(), sample("cubehook_quarantined_total", {"reason": flaw.value}))
    header = signature(body)["ComplyCube-Signature"]
    response = client.post(URL, content=body, headers=signature(body))
    assert response.status_code == 202
    answer = response.json()
    assert set(answer) == {"status", "quarantine_id"}
    assert answer["status"] == "quarantined"
    item = get(settings, answer["quarantine_id"])
    assert item is not None
    assert (item.body, item.signature, item.size, item.flaw) == (body, header, len(body), flaw.value)
    assert item.reason
    assert before[0] - 1 <= item.kept_at.timestamp() <= time.time() + 1
    assert held(redis) == [item.id]
    assert_nothing_queued(redis)
    assert sample("cubehook_quarantined_total", {"reason": flaw.value}) == before[1] + 1


@pytest.mark.parametrize("bad", ["../clients/cl1", "x?pageSize=1&clientId=zzz", "cl1\u0000"])
@pytest.mark.parametrize("event_type", ["workflow.session.completed", "check.completed"])
def test_an_event_whose_id_is_not_a_complycube_id_is_quarantined_never_queued(
    client: TestClient, redis: Redis, settings: Settings, bad: str, event_type: str
) -> None:
    # Signed: whoever holds the secret could otherwise steer the worker's requests (service.ids).
    body = json.dumps({"id": "evt-bad-id", "type": event_type, "payload": {"id": bad}}).encode()
    response = client.post(URL, content=body, headers=signature(body))
    assert (response.status_code, response.json()["status"]) == (202, "quarantined")
    item = get(settings, response.json()["quarantine_id"])
    assert item is not None
    assert item.body == body
    assert item.flaw == Flaw.INVALID_FIELDS.value
    assert "payload.id" in item.reason
    assert "a ComplyCube id (1-64 letters, digits, _ or -)" in item.reason
    assert_nothing_queued(redis)


def test_an_event_id_with_a_nul_is_quarantined_never_queued(
    client: TestClient, redis: Redis, settings: Settings
) -> None:
    # Queued, its job could not put it on the audit trail in PostgreSQL, and was dead-lettered.
    body = json.dumps({"id": "evt\u0000nul", "type": "workflow.session.completed",
                       "payload": {"id": "5eb2b61e02df0a0008f1cf2a"}}).encode()  # fmt: skip
    response = client.post(URL, content=body, headers=signature(body))
    assert (response.status_code, response.json()["status"]) == (202, "quarantined")
    item = get(settings, response.json()["quarantine_id"])
    assert item is not None
    assert (item.flaw, item.reason) == (
        Flaw.INVALID_FIELDS.value,
        "id, type: a control character (NUL, newline, ...) in either",
    )
    assert_nothing_queued(redis)


def test_a_huge_body_just_under_the_limit_is_kept_byte_for_byte(
    client: TestClient, settings: Settings
) -> None:
    head = b'{"id": "big-1", "type": "workflow.session.completed", "padding": "'
    body = head + b"x" * (settings.max_body_bytes - len(head) - 2) + b'"}'
    assert len(body) == settings.max_body_bytes
    response = client.post(URL, content=body, headers=signature(body))
    assert response.status_code == 202
    item = get(settings, response.json()["quarantine_id"])
    assert item is not None
    assert item.body == body
    assert item.flaw == Flaw.MISSING_FIELDS.value  # a session event without payload.id


@pytest.mark.parametrize(
    "headers",
    [{}, {"ComplyCube-Signature": "0" * 64}, signature(b"{not json", OTHER_SECRET)],
    ids=["unsigned", "bad-signature", "other-secret"],
)
def test_unreadable_and_not_correctly_signed_is_401_and_nothing_is_kept(
    client: TestClient, redis: Redis, headers: dict[str, str]
) -> None:
    response = client.post(URL, content=b"{not json", headers=headers)
    assert response.status_code == 401
    assert held(redis) == []
    assert redis.keys(ITEM + "*") == []


def test_over_the_limit_is_413_and_nothing_is_kept(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    with TestClient(create_app(make_settings(max_body_bytes=1000))) as client:
        body = b"[" + b" " * 1000 + b"]"
        assert client.post(URL, content=body, headers=signature(body)).status_code == 413
    assert held(redis) == []


def test_the_answer_and_the_log_hold_no_body_content(client: TestClient, log_output: io.StringIO) -> None:
    body = b'{"type": "workflow.session.completed", "payload": {"entityName": "Johanna Doemeister"}}'
    response = client.post(URL, content=body, headers=signature(body))
    assert response.status_code == 202
    assert "Johanna" not in response.text
    [line] = [json.loads(x) for x in log_output.getvalue().splitlines() if "webhook.quarantined" in x]
    assert line["level"] == "error"
    assert (line["quarantine_id"], line["reason"]) == (response.json()["quarantine_id"], "missing_fields")
    assert "id: Field required" in line["detail"]
    for forbidden in ("Johanna", "Doemeister", signature(body)["ComplyCube-Signature"]):
        assert forbidden not in log_output.getvalue()


def unreadable_body(n: int, size: int = 40) -> bytes:
    """A signed-able body of exactly ``size`` bytes that is no Event (it has no id)."""
    head = f'{{"n": {n:04d}, "padding": "'.encode()
    return head + b"x" * (size - len(head) - 2) + b'"}'


def post_unreadable(client: TestClient, n: int, size: int = 40) -> str:
    body = unreadable_body(n, size)
    response = client.post(URL, content=body, headers=signature(body))
    assert response.status_code == 202
    item_id: str = response.json()["quarantine_id"]
    return item_id


def test_the_oldest_are_evicted_beyond_the_item_count(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    settings = make_settings(quarantine_max_items=3)
    evicted_before = sample("cubehook_quarantine_evicted_total")
    with TestClient(create_app(settings)) as client:
        ids = [post_unreadable(client, n) for n in range(5)]
    assert held(redis) == ids[2:]
    assert [redis.exists(ITEM + i) for i in ids] == [0, 0, 1, 1, 1]
    totals = quarantine.totals(redis, settings.quarantine_retention_seconds)
    assert (totals.items, totals.evicted) == (3, 2)
    assert sample("cubehook_quarantine_evicted_total") == evicted_before + 2


def test_the_oldest_are_evicted_beyond_the_bytes(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    settings = make_settings(max_body_bytes=1000, quarantine_max_bytes=1000)
    with TestClient(create_app(settings)) as client:
        ids = [post_unreadable(client, n, size=400) for n in range(4)]
        assert held(redis) == ids[2:]
        totals = quarantine.totals(redis, settings.quarantine_retention_seconds)
        assert (totals.items, totals.bytes, totals.evicted) == (2, 800, 2)
        big = post_unreadable(client, 9, size=1000)  # everything else must go
    assert held(redis) == [big]
    assert quarantine.totals(redis, settings.quarantine_retention_seconds).bytes == 1000


def test_each_item_expires_after_the_retention(make_settings: Callable[..., Settings], redis: Redis) -> None:
    settings = make_settings(quarantine_retention_seconds=7 * 24 * 3600)
    with TestClient(create_app(settings)) as client:
        item_id = post_unreadable(client, 1)
    assert 7 * 24 * 3600 - 5 < redis.ttl(ITEM + item_id) <= 7 * 24 * 3600


def test_an_expired_item_is_forgotten_by_the_index_and_the_totals(
    client: TestClient, redis: Redis, settings: Settings
) -> None:
    old, new = post_unreadable(client, 1, size=100), post_unreadable(client, 2, size=50)
    # As if ``old`` had been kept a retention ago: its key has expired, its index entry not yet.
    redis.zadd(INDEX, {old: (time.time() - settings.quarantine_retention_seconds - 60) * 1_000_000})
    redis.delete(ITEM + old)
    totals = quarantine.totals(redis, settings.quarantine_retention_seconds)
    assert (totals.items, totals.bytes) == (1, 50)
    assert held(redis) == [new]
    assert [i.id for i in intake_run(settings, lambda intake: intake.quarantine.items())] == [new]


def test_when_redis_cannot_keep_it_the_answer_is_503(own_redis: EmbeddedRedis) -> None:
    admin = Redis.from_url(own_redis.url)
    settings = Settings(redis_url=own_redis.url, webhook_secrets=SECRET, redis_timeout_seconds=0.5)
    body = b"{not json"
    with TestClient(create_app(settings)) as client:
        admin.config_set("min-replicas-to-write", 1)  # no replica: every write is refused
        try:
            refused = client.post(URL, content=body, headers=signature(body))
        finally:
            admin.config_set("min-replicas-to-write", 0)
        assert refused.status_code == 503
        assert refused.json()["error"] == "queue_unavailable"
        assert held(admin) == []
        assert client.post(URL, content=body, headers=signature(body)).status_code == 202
    admin.close()


def test_the_metrics_show_what_the_quarantine_holds(client: TestClient, admin: TestClient) -> None:
    post_unreadable(client, 1, size=100)
    post_unreadable(client, 2, size=200)
    text = admin.get("/metrics").text
    assert "cubehook_quarantine_items 2.0" in text
    assert "cubehook_quarantine_bytes 300.0" in text


# --- replay ------------------------------------------------------------------------------------


def test_concurrent_deliveries_never_overshoot_the_bounds(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    settings = make_settings(quarantine_max_items=5)
    app = create_app(settings)

    async def burst() -> list[int]:
        import httpx2

        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as http:
            bodies = [unreadable_body(n) for n in range(40)]
            answers = await asyncio.gather(*(http.post(URL, content=b, headers=signature(b)) for b in bodies))
        return [a.status_code for a in answers]

    assert asyncio.run(burst()) == [202] * 40
    totals = quarantine.totals(redis, settings.quarantine_retention_seconds)
    assert (totals.items, totals.evicted) == (5, 35)
    assert len(redis.keys(ITEM + "*")) == 5
