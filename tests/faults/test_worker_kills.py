"""Workers killed with SIGKILL at random points, again and again; ComplyCube and an action target
failing for a while. In the end: every session decided once, every action delivered once in effect,
and what went to the dead-letter queue replays cleanly."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from redis import Redis

from cubehook_dev.devredis import free_port
from service.queue import EventQueue
from service.rq_jobs import EventRef, rq_queue
from service.settings import Settings
from tests.conftest import SEAL, SECRET, Receiver, SimServer
from tests.e2e.conftest import CUBEHOOK, running
from tests.faults.conftest import check_once, setup
from tests.faults.test_duplicates import deliver, events_of
from workers.sessions import SessionStore

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


def finish(env: dict[str, str]) -> None:
    """A worker to the end of the queue."""
    done = subprocess.run([CUBEHOOK, "worker", "--burst"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


RECOVERY_BOUND_SECONDS = 90  # the README's guarantee, with the default leases


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Its own process group: the kill takes RQ's scheduler (a child process) down with it.
    return subprocess.Popen([CUBEHOOK, "worker"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def all_done(redis: Redis, sessions: dict[str, str], receiver: Receiver, events: int) -> bool:
    """Every event's job finished, every session decided, every decision at the target."""
    queue = rq_queue("cubehook", redis)
    if (
        queue.count
        or queue.started_job_registry.get_job_ids(cleanup=False)
        or queue.scheduled_job_registry.count
    ):
        return False  # deferred looks and follow-ups are scheduled jobs: they must have run too
    finished = [job_id for job_id in queue.finished_job_registry.get_job_ids() if job_id.startswith("evt-")]
    store = SessionStore(redis, 15, seal=SEAL)
    decided = {sid: store.current(sid) for sid in sessions}
    if len(set(finished)) < events or any(d is None for d in decided.values()):
        return False
    delivered = {headers["webhook-id"].split(".")[0] for _, headers, _ in receiver.requests}
    return {d.decision_id for d in decided.values() if d is not None} <= delivered


def test_workers_killed_at_random_instants_lose_and_delay_nothing_beyond_the_bound(
    sim: SimServer, redis_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    """The web process and two workers under every event three times, shuffled; a worker SIGKILLed
    (with its RQ scheduler) at a random instant about every 2 s, six times, restarted at once. With
    the default leases, every accepted event is processed and every decision delivered within the
    bound after the last kill, without the backfill (maintenance is off)."""
    env = setup(sim, redis_url, receiver, tmp_path, short_leases=False)
    presets = ["clear", "attention", "rejected", "disagree", "failed"] * 12
    expected = {"clear": "clear", "attention": "attention", "rejected": "rejected", "disagree": "rejected",
                "failed": "attention"}  # fmt: skip
    sessions = {sim.create(preset=p, mode="settled")["sessionId"]: expected[p] for p in presets}
    bodies = [body for sid in sessions for body in events_of(sim, sid)]
    rng = random.Random(11)
    rng.shuffle(bodies)
    sim.faults(seed=3, latency_ms=40)
    port = free_port()
    env.update(CUBEHOOK_PORT=str(port), CUBEHOOK_WEBHOOK_SECRETS=SECRET)
    base = f"http://127.0.0.1:{port}"
    redis = Redis.from_url(redis_url)
    with running([CUBEHOOK, "web"], env, f"{base}/healthz"):
        workers = [start_worker(env), start_worker(env)]
        answers: list[tuple[str, int]] = []
        sender = threading.Thread(
            target=lambda: answers.extend(asyncio.run(deliver(f"{base}/webhooks/complycube", bodies, 3))),
        )
        sender.start()
        try:
            for kill in range(6):
                time.sleep(rng.uniform(1.0, 3.0))
                victim = workers[kill % 2]
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait(timeout=10)
                workers[kill % 2] = start_worker(env)
            last_kill = time.monotonic()
            sender.join(timeout=120)
            assert sorted({status for _, status in answers}) == [200, 202]
            while not all_done(redis, sessions, receiver, len(bodies)):
                waited = time.monotonic() - last_kill
                assert waited < RECOVERY_BOUND_SECONDS, f"not done {waited:.0f} s after the last kill"
                time.sleep(0.5)
            print(f"\nall done {time.monotonic() - last_kill:.1f} s after the last kill")
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
    check_once(redis_url, env, sessions, receiver)
    redis.close()


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
    queue = rq_queue("cubehook", Redis.from_url(redis_url))
    # ComplyCube's outage dead-letters nothing: the jobs that met it wait, put back (workers.outages).
    # The target's refusals, past the actions' retries, are dead letters: a person's to replay.
    assert queue.scheduled_job_registry.count > 0
    assert all(job_id.startswith("act-") for job_id in queue.failed_job_registry.get_job_ids())
    sim.faults()
    receiver.status = 200
    time.sleep(7)  # the put-back jobs are due (5 s after their first put-back, plus jitter)
    replay = subprocess.run(
        [CUBEHOOK, "dlq", "replay", "--all"], env=env, capture_output=True, text=True, timeout=120
    )
    assert replay.returncode == 0, replay.stderr
    finish(env)
    # Actions dead-lettered during the outage were replayed by the same command if their decision
    # existed; replay once more for those whose decision came only after the first replay.
    subprocess.run([CUBEHOOK, "dlq", "replay", "--all"], env=env, capture_output=True, timeout=120)
    finish(env)
    assert queue.failed_job_registry.count == 0
    check_once(redis_url, env, sessions, receiver)
