"""Maintenance (the webhook watchdog and the backfill) runs every interval for as long as any
worker lives: real worker processes, the real job ids, several intervals, and the worker holding
RQ's scheduler SIGKILLed midway."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis

from service.keys import WATCHDOG_ENABLED
from service.rq_jobs import rq_queue
from tests.conftest import SIM_API_KEY, Receiver, SimServer
from tests.e2e.conftest import CUBEHOOK
from tests.faults.conftest import setup

pytestmark = pytest.mark.e2e
INTERVAL = 2


def maintenance_runs(redis: Redis) -> list[int]:
    """The slots of the maintenance runs that finished, in order."""
    queue = rq_queue("cubehook", redis)
    ids = queue.finished_job_registry.get_job_ids()
    return sorted(
        int(job_id.removeprefix("maintenance-")) for job_id in ids if job_id.startswith("maintenance-")
    )


def wait_for_runs(redis: Redis, count: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(runs := maintenance_runs(redis)) < count:
        assert time.monotonic() < deadline, f"{len(runs)} maintenance run(s), wanted {count}: {runs}"
        time.sleep(0.2)
    return runs


def scheduler_holder(redis: Redis) -> int:
    """The process group of the worker whose RQ scheduler holds the queue's scheduler lock."""
    deadline = time.monotonic() + 30
    while not (name := redis.get("rq:scheduler-lock:cubehook")):
        assert time.monotonic() < deadline, "no worker took RQ's scheduler lock"
        time.sleep(0.2)
    scheduler = name.decode() if isinstance(name, bytes) else str(name)
    pid = int(redis.hget(f"rq:scheduler:{scheduler}", "pid") or 0)
    return os.getpgid(pid)


def test_maintenance_runs_every_interval_whichever_worker_holds_the_scheduler(
    sim: SimServer, redis_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    hook = sim.control("POST", "/v1/webhooks", json={"url": "https://example.test/hook"},
                       headers={"Authorization": SIM_API_KEY})  # fmt: skip
    env = setup(sim, redis_url, receiver, tmp_path)
    env.update(CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS=str(INTERVAL), CUBEHOOK_RECOVERY_INTERVAL_SECONDS="0.5")
    redis = Redis.from_url(redis_url)
    workers = [
        subprocess.Popen(
            [CUBEHOOK, "worker"],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        before = wait_for_runs(redis, 3, timeout=30)
        assert redis.hget(WATCHDOG_ENABLED, hook["id"]) == b"1"
        holder = scheduler_holder(redis)
        os.killpg(holder, signal.SIGKILL)
        killed_at = len(before)
        # The webhook goes down: only a watchdog that still runs can see it.
        sim.control("POST", f"/v1/webhooks/{hook['id']}", json={"enabled": False},
                    headers={"Authorization": SIM_API_KEY})  # fmt: skip
        after = wait_for_runs(redis, killed_at + 3, timeout=30)
        assert redis.hget(WATCHDOG_ENABLED, hook["id"]) == b"0"
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        redis.close()
    assert len(set(after)) == len(after)  # one run per slot, never two
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert all(gap >= INTERVAL for gap in gaps), gaps  # never more often than the interval
