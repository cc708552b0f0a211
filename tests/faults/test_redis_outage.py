"""Redis stopped and restarted during a stream of webhooks, with real processes: every event that
got a 2xx is processed; the others got 503 and went through on ComplyCube-style retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from redis import Redis

from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.rq_jobs import rq_queue
from tests.conftest import SECRET, keeping_intake_scripts
from tests.e2e.conftest import CUBEHOOK, cubehook_env, running

pytestmark = pytest.mark.e2e


@pytest.fixture
def durable_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(durable=True) as server:  # as production runs it: AOF on
        yield server


def test_events_survive_a_redis_outage_mid_stream(durable_redis: EmbeddedRedis, tmp_path: Path) -> None:
    web_port, sim_port = free_port(), free_port()
    web_url, sim_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{sim_port}"
    env = cubehook_env(
        CUBEHOOK_REDIS_URL=durable_redis.url, CUBEHOOK_WEBHOOK_SECRETS=SECRET, CUBEHOOK_PORT=str(web_port),
        CUBEHOOK_REDIS_TIMEOUT_SECONDS="0.5", CUBEHOOK_LOG_LEVEL="WARNING",
    )  # fmt: skip
    simulate = [CUBEHOOK, "simulate", "--port", str(sim_port), "--seed", "9", "--step-seconds", "0.3",
                "--retry-scale", "0.02", "--webhook-url", f"{web_url}/webhooks/complycube", "--webhook-secret", SECRET]  # fmt: skip
    with (
        keeping_intake_scripts(durable_redis.url),  # the workers' part here: the web may only run them
        running([CUBEHOOK, "web"], env, f"{web_url}/healthz"),
        running(simulate, cubehook_env(), f"{sim_url}/_sim/health"),
    ):
        for _ in range(12):
            httpx2.post(f"{sim_url}/_sim/sessions", json={"preset": "rejected"}, timeout=5)
        time.sleep(0.4)
        durable_redis.stop()  # mid-stream: sessions are still being played
        time.sleep(1.5)
        durable_redis.start()
        idle = httpx2.get(f"{sim_url}/_sim/idle", params={"timeout": 90}, timeout=100).json()
        assert idle == {"idle": True}
        deliveries = httpx2.get(f"{sim_url}/_sim/deliveries", timeout=5).json()

    refused = {d["eventId"] for d in deliveries if d["outcome"] == "503"}
    ok = {d["eventId"] for d in deliveries if d["outcome"] in ("200", "202")}
    everything = {d["eventId"] for d in deliveries}
    assert refused, "the outage should have refused some deliveries"
    assert refused <= ok  # each refused event went through on a retry
    assert ok == everything  # nothing left undelivered
    assert not any(d["outcome"] in ("disabled", "skipped: disabled") for d in deliveries)
    redis = Redis.from_url(durable_redis.url)
    queue = rq_queue("cubehook", redis)
    queued = {
        job.kwargs["event_id"] for job in queue.get_jobs() if job.func_name == "workers.jobs.process_event"
    }
    # Every event that got a 2xx is queued, once (the job id is the event id's), after the restart
    # too. Some got a 503 although Redis had run the script (the answer was lost with the
    # connection); their retry then got "duplicate": queued once, never lost, never doubled.
    assert queued == ok
    redis.close()
