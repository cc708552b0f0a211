"""/metrics, on the admin app: what the web process counted, and the queue as Redis holds it."""

from __future__ import annotations

import socket
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from service.metrics import WEB, WORKER
from service.settings import Settings
from service.web.app import create_apps
from tests.conftest import event_body, signature


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return WEB.get_sample_value(name, labels or {}) or 0.0


def scrape(admin: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = admin.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_webhook_answers_and_queue_depth(client: TestClient, admin: TestClient) -> None:
    accepted = {"status": "accepted", "code": "202"}
    duplicate = {"status": "duplicate", "code": "200"}
    before = (sample("cubehook_webhooks_total", accepted), sample("cubehook_webhooks_total", duplicate),
              sample("cubehook_signature_failures_total", {"reason": "mismatch"}),
              sample("cubehook_enqueue_seconds_count"))  # fmt: skip
    body = event_body(event_id="m1")
    client.post("/webhooks/complycube", content=body, headers=signature(body))
    client.post("/webhooks/complycube", content=body, headers=signature(body))
    client.post("/webhooks/complycube", content=body, headers=signature(body, "wrong"))
    metrics = scrape(admin)
    assert metrics[("cubehook_webhooks_total", (("code", "202"), ("status", "accepted")))] == before[0] + 1
    assert metrics[("cubehook_webhooks_total", (("code", "200"), ("status", "duplicate")))] == before[1] + 1
    assert metrics[("cubehook_signature_failures_total", (("reason", "mismatch"),))] == before[2] + 1
    assert metrics[("cubehook_enqueue_seconds_count", ())] == before[3] + 2
    assert metrics[("cubehook_redis_up", ())] == 1.0
    assert metrics[("cubehook_jobs", (("state", "queued"),))] == 2.0  # the event, and the duplicate's record
    assert metrics[("cubehook_jobs", (("state", "failed"),))] == 0.0
    assert metrics[("cubehook_last_event_timestamp_seconds", ())] > 0
    assert metrics[("cubehook_oldest_queued_seconds", ())] >= 0


def test_a_scrape_reads_redis_and_writes_nothing(admin: TestClient, redis: Redis) -> None:
    """RQ's registry.count would clean an expired entry up (a write, and the workers' job); the
    scrape counts it as it is."""
    started = Queue("cubehook", connection=redis).started_job_registry
    redis.zadd(started.key, {"evt-long-gone": 1})  # expired in 1970
    before = {key: redis.type(key) for key in redis.keys("*")}
    metrics = scrape(admin)
    assert metrics[("cubehook_jobs", (("state", "started"),))] == 1.0
    assert redis.zscore(started.key, "evt-long-gone") == 1.0
    assert {key: redis.type(key) for key in redis.keys("*")} == before


def test_a_hung_redis_is_reported_down_within_the_scrape(make_settings: Callable[..., Settings]) -> None:
    """A Redis that accepts connections and never answers: the scrape still answers, in the
    client's timeout, saying so (the series stays: the Redis-down alert can fire)."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # accepts (the kernel does), never answers
        url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
        apps = create_apps(make_settings(redis_url=url, redis_timeout_seconds=0.5))
        with TestClient(apps.admin) as admin:
            metrics = scrape(admin)
    assert metrics[("cubehook_redis_up", ())] == 0.0
    assert not any(name == "cubehook_jobs" for name, _labels in metrics)


def test_no_last_event_series_before_the_first_event(admin: TestClient) -> None:
    """Never: no series, rather than a 0 that reads as an event in 1970 (and fires the alert)."""
    assert not any(name == "cubehook_last_event_timestamp_seconds" for name, _labels in scrape(admin))


# A worker's series (service.metrics and workers.outages), by the names of their families.
WORKER_SERIES = {
    "cubehook_job_seconds", "cubehook_complycube_calls", "cubehook_decisions", "cubehook_actions",
    "cubehook_backfill_filter_misses", "cubehook_event_to_decision_seconds", "cubehook_worker_redis_up",
    "cubehook_database_up", "cubehook_complycube_up", "cubehook_redis_outages", "cubehook_redis_data_loss",
    "cubehook_job_waits", "cubehook_actions_requeued", "cubehook_forged_decisions",
}  # fmt: skip


def test_the_web_exports_its_own_series_and_none_of_a_workers(admin: TestClient) -> None:
    """A worker's series on the web's /metrics would read 0 for ever: a dashboard summing
    cubehook_decisions_total over every target, or an alert on a worker's gauge, would count it."""
    import workers.outages
    import workers.seal  # noqa: F401

    exported = {family.name for family in text_string_to_metric_families(admin.get("/metrics").text)}
    worker_own = {family.name for family in WORKER.collect() if family.name.startswith("cubehook_")}
    assert worker_own == WORKER_SERIES
    assert exported & WORKER_SERIES == set()
    web_own = {family.name for family in WEB.collect() if family.name.startswith("cubehook_")}
    assert {"cubehook_webhooks", "cubehook_enqueue_seconds", "cubehook_quarantined"} <= web_own
    assert web_own <= exported
    assert web_own & worker_own == set()  # and a worker's port, its registry, none of the web's
    assert "process_resident_memory_bytes" in exported  # the process's own, as before
