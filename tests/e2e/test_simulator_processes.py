"""The simulator, web and worker as real processes on a private Redis; and `send-event`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from redis import Redis

from cubehook_dev.devredis import free_port
from service.rq_jobs import rq_queue
from tests.conftest import FIXTURES, SEAL, SECRET
from tests.e2e.conftest import CUBEHOOK, cubehook_env, running
from workers.audit.store import AuditStore
from workers.sessions import SessionStore

pytestmark = pytest.mark.e2e


@pytest.fixture
def simulator_url(web: str) -> Iterator[str]:
    port = free_port()
    command = [CUBEHOOK, "simulate", "--port", str(port), "--seed", "3", "--retry-scale", "0.001",
               "--webhook-url", f"{web}/webhooks/complycube", "--webhook-secret", SECRET]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with running(command, cubehook_env(), f"{base}/_sim/health"):
        yield base


def test_a_simulated_session_travels_to_a_decision(
    simulator_url: str, redis_url: str, tmp_path: Path
) -> None:
    created = httpx2.post(f"{simulator_url}/_sim/sessions", json={"preset": "rejected"}, timeout=5).json()
    assert httpx2.get(f"{simulator_url}/_sim/idle", params={"timeout": 30}, timeout=35).json() == {
        "idle": True
    }
    deliveries = httpx2.get(f"{simulator_url}/_sim/deliveries", timeout=5).json()
    assert sorted(d["outcome"] for d in deliveries) == ["202"] * 6  # 3 session events, 3 check events
    env = cubehook_env(
        CUBEHOOK_REDIS_URL=redis_url,
        CUBEHOOK_COMPLYCUBE_BASE_URL=f"{simulator_url}/v1",
        CUBEHOOK_COMPLYCUBE_API_KEY="test_simulator_key",
        CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/audit.db",
    )
    worker = subprocess.run(
        [CUBEHOOK, "worker", "--burst"], env=env, capture_output=True, text=True, timeout=120
    )
    assert worker.returncode == 0, worker.stderr
    redis = Redis.from_url(redis_url)
    queue = rq_queue("cubehook", redis)
    assert queue.finished_job_registry.count == 7  # six events, and the default rules' log action
    [decision] = SessionStore(redis, 60, seal=SEAL).history(created["sessionId"])
    assert (decision.outcome, decision.client_id) == ("rejected", created["clientId"])
    [entry] = AuditStore.from_url(f"sqlite:///{tmp_path}/audit.db").ledger(decision.decision_id)
    assert (entry["action"], entry["state"], entry["attempts"]) == ("log", "sent", 1)
    redis.close()


def _send(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CUBEHOOK, "send-event", *args], env=cubehook_env(), capture_output=True, text=True, timeout=30
    )


def test_send_event_against_the_real_web_process(web: str) -> None:
    url = f"{web}/webhooks/complycube"
    fixture = str(FIXTURES / "event-workflow-session-completed.json")
    first = _send(fixture, "--url", url, "--secret", SECRET)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("202 Accepted")
    again = _send(fixture, "--url", url, "--secret", SECRET)
    assert again.stdout.startswith("200 OK")
    assert json.loads(again.stdout.splitlines()[1])["status"] == "duplicate"
    built = _send("--session", "sess-x", "--url", url, "--secret", SECRET)
    assert built.stdout.startswith("202 Accepted")
    forged = _send("--session", "sess-y", "--url", url, "--secret", "wrong")
    assert forged.returncode == 1
    assert forged.stdout.startswith("401 Unauthorized")


def test_send_event_needs_a_source_and_reports_unreachable_urls() -> None:
    assert _send("--secret", "s").returncode == 2
    gone = _send("--session", "s1", "--outcome", "clear", "--secret", "s")  # the event never told it
    assert gone.returncode == 2
    assert "No such option '--outcome'" in gone.stderr
    unreachable = _send("--session", "s1", "--secret", "s", "--url", f"http://127.0.0.1:{free_port()}/x")
    assert unreachable.returncode == 1
    assert "could not reach" in unreachable.stderr
