"""Redis SIGKILLed under two real worker processes, while action jobs are in flight (the target
answers in 1.5 s), then restarted: with its data (AOF, as deploy/redis/redis.conf), and empty (no
persistence). The workers never exit; every session is decided once, every decision delivered
once; nothing is dead-lettered; and the empty restart is noticed (the epoch) and recovered from."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from redis import Redis

from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.rq_jobs import rq_queue
from tests.conftest import Receiver, SimServer
from tests.e2e.conftest import CUBEHOOK
from tests.faults.conftest import setup
from tests.faults.test_worker_kills import submit_all
from workers.audit.store import AuditStore

pytestmark = pytest.mark.e2e
SESSIONS = 12


@pytest.fixture(params=["durable", "empty"])
def restarted(request: pytest.FixtureRequest) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(durable=request.param == "durable") as server:
        yield server


def metric(port: int, name: str) -> float | None:
    for line in httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def start_worker(env: dict[str, str], metrics_port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [CUBEHOOK, "worker"], env={**env, "CUBEHOOK_WORKER_METRICS_PORT": str(metrics_port)},
            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
        )  # fmt: skip


def watch_gauges(ports: list[int], seconds: float) -> list[float]:
    """Each worker's lowest `cubehook_worker_redis_up` over ``seconds``, read every 0.2 s."""
    lowest = [1.0 for _ in ports]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for n, port in enumerate(ports):
            read = metric(port, "cubehook_worker_redis_up")
            lowest[n] = min(lowest[n], 1.0 if read is None else read)
        time.sleep(0.2)
    return lowest


def delivered(receiver: Receiver) -> list[str]:
    return [headers["webhook-id"].split(".")[0] for _, headers, _ in receiver.requests]


def test_workers_ride_out_a_redis_restart(
    restarted: EmbeddedRedis, sim: SimServer, receiver: Receiver, tmp_path: Path
) -> None:
    durable = restarted.durable
    receiver.delay = 1.5  # action jobs are running when Redis dies
    env = setup(sim, restarted.url, receiver, tmp_path, short_leases=True)
    env.update(CUBEHOOK_REDIS_TIMEOUT_SECONDS="0.5", CUBEHOOK_JOB_LEASE_SECONDS="3",
               CUBEHOOK_RECOVERY_INTERVAL_SECONDS="1", CUBEHOOK_LOG_LEVEL="INFO",
               CUBEHOOK_BACKFILL_LOOKBACK_SECONDS="3600", CUBEHOOK_EVENT_DEFER_SECONDS="0")  # fmt: skip
    sessions = {
        sim.create(preset="rejected", mode="settled")["sessionId"]: "rejected" for _ in range(SESSIONS)
    }
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    workers = [start_worker(env, port, log) for port, log in zip(ports, logs, strict=True)]
    audit = AuditStore.from_url(env["CUBEHOOK_DATABASE_URL"])
    try:
        time.sleep(2)
        submit_all(restarted.url, list(sessions))
        deadline = time.monotonic() + 30
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)  # the kill strikes while the first actions are being sent
        restarted.kill()
        seen_down = watch_gauges(ports, seconds=5.0)  # Redis stays away this long
        restarted.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            decided = {sid: audit.latest_decision(sid) for sid in sessions}
            done = all(d is not None for d in decided.values())
            if done and set(delivered(receiver)) >= {d.decision_id for d in decided.values() if d}:
                break
            time.sleep(0.5)
        time.sleep(2)  # let any double show itself
        alive = [w.poll() for w in workers]
        losses = [metric(port, "cubehook_redis_data_loss_total") for port in ports]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    stderr = "\n".join(log.read_text(errors="replace") for log in logs)
    assert alive == [None, None], stderr[-5000:]  # no worker exited
    assert "unhandled exception" not in stderr
    assert "Traceback" not in stderr  # an outage is expected: no traceback
    assert seen_down == [0.0, 0.0]  # each worker saw the outage and said so on its gauge
    assert "redis.unavailable" in stderr
    decisions = {
        sid: [d["decision_id"] for d in audit.history(sid) if d["entry"] == "decision"] for sid in sessions
    }
    assert all(len(ids) == 1 for ids in decisions.values()), decisions  # decided once each
    ids = sorted(ids[0] for ids in decisions.values())
    assert sorted(set(delivered(receiver))) == ids  # every decision delivered...
    for decision_id in ids:
        assert [e["state"] for e in audit.ledger(decision_id)] == ["sent"]  # ...and recorded sent, once
    redis = Redis.from_url(restarted.url)
    assert rq_queue("cubehook", redis).failed_job_registry.count == 0  # no dead letter
    redis.close()
    if durable:
        assert sum(x or 0 for x in losses) == 0  # a restart that kept its data is no loss
    else:
        assert sum(x or 0 for x in losses) == 1  # noticed once, fleet-wide
        assert "redis.data_lost" in stderr
