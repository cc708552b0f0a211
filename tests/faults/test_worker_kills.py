"""Workers killed with SIGKILL at random points, again and again; ComplyCube and an action target
failing for a while. In the end: every session decided once, every action delivered once in effect,
and what went to the dead-letter queue replays cleanly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry

from service.queue import EventQueue, EventRef
from service.settings import Settings
from tests.conftest import Receiver, SimServer
from tests.e2e.conftest import CUBEHOOK
from tests.faults.conftest import check_once, setup

pytestmark = pytest.mark.e2e


def submit_all(redis_url: str, sessions: list[str]) -> None:
    redis = Redis.from_url(redis_url)
    intake = EventQueue(
        redis, Settings(redis_url=redis_url, webhook_secrets="x", job_retry_intervals="0,0,0,0,0")
    )
    for sid in sessions:
        for n, kind in enumerate(("started", "processing", "completed")):
            intake.submit(EventRef(f"{sid}-{n}", f"workflowSession.{kind}", "workflowSession", sid, "t"))
    redis.close()


def recover_and_finish(env: dict[str, str], redis_url: str) -> None:
    """What RQ's maintenance does once a dead worker's heartbeat lapses, then a worker to the end.
    That takes a minute in RQ; the dead workers' session leases (2 s) are over well before."""
    redis = Redis.from_url(redis_url)
    StartedJobRegistry(queue=Queue("cubehook", connection=redis)).cleanup(timestamp=time.time() + 3600)
    redis.close()
    time.sleep(2.1)
    done = subprocess.run([CUBEHOOK, "worker", "--burst"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_workers_killed_at_random_points_decide_and_deliver_once(
    sim: SimServer, redis_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    env = setup(sim, redis_url, receiver, tmp_path)
    presets = ["clear", "attention", "rejected", "disagree", "failed"] * 4
    expected = {"clear": "clear", "attention": "attention", "rejected": "rejected", "disagree": "rejected",
                "failed": "attention"}  # fmt: skip
    sessions = {sim.create(preset=p, mode="settled")["sessionId"]: expected[p] for p in presets}
    sim.faults(seed=3, latency_ms=60)
    submit_all(redis_url, list(sessions))
    rng = random.Random(7)
    for _ in range(6):  # start two workers, kill them at a random moment, again
        workers = [subprocess.Popen([CUBEHOOK, "worker"], env=env, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]  # fmt: skip
        time.sleep(rng.uniform(0.8, 2.0))
        for worker in workers:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    sim.faults()
    recover_and_finish(env, redis_url)
    check_once(redis_url, env, sessions, receiver)


def test_complycube_and_the_target_failing_for_a_while(
    sim: SimServer, redis_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    env = setup(sim, redis_url, receiver, tmp_path)
    sessions = {sim.create(preset="rejected", mode="settled")["sessionId"]: "rejected" for _ in range(4)}
    # Every 429 says Retry-After: 1, so the jobs it puts back (not failed: workers.reschedule) are
    # due by the time the recovery's burst worker starts.
    sim.faults(seed=5, rate_429=0.3, rate_500=0.3, rate_timeout=0.1, timeout_seconds=1, retry_after_share=1.0)
    receiver.status = 503  # the onboarding system is down too
    submit_all(redis_url, list(sessions))
    impatient = {**env, "CUBEHOOK_COMPLYCUBE_TIMEOUT_SECONDS": "0.5", "CUBEHOOK_COMPLYCUBE_MAX_ATTEMPTS": "2",
                 "CUBEHOOK_COMPLYCUBE_RETRY_BUDGET_SECONDS": "0.3",
                 "CUBEHOOK_EVENT_DEFER_SECONDS": "0"}  # every event looks at once, into the outage  # fmt: skip
    first = subprocess.run([CUBEHOOK, "worker", "--burst"], env=impatient, capture_output=True, timeout=300)
    assert first.returncode == 0
    queue = Queue("cubehook", connection=Redis.from_url(redis_url))
    assert queue.failed_job_registry.count > 0  # the outages dead-lettered work
    sim.faults()
    receiver.status = 200
    replay = subprocess.run(
        [CUBEHOOK, "dlq", "replay", "--all"], env=env, capture_output=True, text=True, timeout=120
    )
    assert replay.returncode == 0, replay.stderr
    recover_and_finish(env, redis_url)
    # Actions dead-lettered during the outage were replayed by the same command if their decision
    # existed; replay once more for those whose decision came only after the first replay.
    subprocess.run([CUBEHOOK, "dlq", "replay", "--all"], env=env, capture_output=True, timeout=120)
    recover_and_finish(env, redis_url)
    assert queue.failed_job_registry.count == 0
    check_once(redis_url, env, sessions, receiver)
