"""Issue 11, part 2: readable events of types cubehook does not act on stay `200 ignored`, are
counted by type (Prometheus, and fleet-wide in Redis), and each type is logged once at warning."""

from __future__ import annotations

import io
import json

import pytest
from redis import Redis
from starlette.testclient import TestClient

from service import metrics
from service.metrics import WEB
from service.quarantine import IGNORED_TYPES, MAX_IGNORED_TYPES, OTHER_TYPES, ignored_types
from tests.conftest import event_body, signature

URL = "/webhooks/complycube"


def ignore(client: TestClient, event_id: str, event_type: str) -> None:
    body = event_body(event_id=event_id, event_type=event_type, resource_type=event_type.split(".")[0])
    response = client.post(URL, content=body, headers=signature(body))
    assert (response.status_code, response.json()) == (200, {"status": "ignored", "event_id": event_id})


def counted(event_type: str) -> float:
    return WEB.get_sample_value("cubehook_events_ignored_total", {"type": event_type}) or 0.0


def lines(log_output: io.StringIO, event: str) -> list[dict[str, str]]:
    return [json.loads(x) for x in log_output.getvalue().splitlines() if f'"{event}"' in x]


def test_ignored_events_are_counted_by_type_and_each_type_warned_of_once(
    client: TestClient, redis: Redis, log_output: io.StringIO
) -> None:
    before = counted("client.created"), counted("document.updated")
    for n in range(3):
        ignore(client, f"ign-client-{n}", "client.created")
    ignore(client, "ign-doc-1", "document.updated")
    assert (counted("client.created"), counted("document.updated")) == (before[0] + 3, before[1] + 1)
    assert ignored_types(redis) == {"client.created": 3, "document.updated": 1}
    first = lines(log_output, "webhook.ignored_type_first_seen")
    assert [(x["event_type"], x["level"]) for x in first] == [
        ("client.created", "warning"),
        ("document.updated", "warning"),
    ]
    assert [(x["event_type"], x["level"]) for x in lines(log_output, "webhook.ignored")] == [
        ("client.created", "info"),
        ("client.created", "info"),
    ]


def test_first_seen_is_fleet_wide(client: TestClient, redis: Redis, log_output: io.StringIO) -> None:
    redis.hset(IGNORED_TYPES, "address.created", 5)  # another web process has seen it
    ignore(client, "ign-addr-1", "address.created")
    assert lines(log_output, "webhook.ignored_type_first_seen") == []
    assert ignored_types(redis) == {"address.created": 6}


def test_past_the_cap_types_are_counted_together(
    client: TestClient, redis: Redis, log_output: io.StringIO
) -> None:
    redis.hset(IGNORED_TYPES, mapping={f"type.{n:03d}": 1 for n in range(MAX_IGNORED_TYPES)})
    ignore(client, "ign-over-1", "one.too.many")
    ignore(client, "ign-over-2", "and.another")
    counts = ignored_types(redis)
    assert len(counts) == MAX_IGNORED_TYPES + 1
    assert (counts[OTHER_TYPES], "one.too.many" in counts) == (2, False)
    [first] = lines(log_output, "webhook.ignored_type_first_seen")  # the first to overflow
    assert (first["event_type"], first["counted_as"]) == ("one.too.many", OTHER_TYPES)


def test_the_metric_label_set_is_capped_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    other = metrics.EVENTS_IGNORED.labels(type=OTHER_TYPES)
    monkeypatch.setattr(metrics, "_IGNORED", {f"seen.{n}": other for n in range(MAX_IGNORED_TYPES)})
    before = counted(OTHER_TYPES)
    metrics.count_ignored("brand.new.type")
    assert (counted(OTHER_TYPES), counted("brand.new.type")) == (before + 1, 0.0)
