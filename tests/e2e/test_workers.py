"""Real `cubehook worker` processes against the simulator: racing, killed, re-checking."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import StartedJobRegistry

from service.queue import EventQueue
from service.rq_jobs import EventRef, rq_queue
from service.settings import Settings
from tests.conftest import SEAL, SIM_API_KEY, Receiver, SimServer
from tests.e2e.conftest import CUBEHOOK, cubehook_env
from workers.audit.store import AuditStore
from workers.judging.judge import Decision
from workers.sessions import SessionStore

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(redis_url: str, sim: SimServer, tmp_path: Path) -> dict[str, str]:
    return cubehook_env(
        CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/audit.db",
        CUBEHOOK_REDIS_URL=redis_url,
        CUBEHOOK_COMPLYCUBE_BASE_URL=f"{sim.url}/v1",
        CUBEHOOK_COMPLYCUBE_API_KEY=SIM_API_KEY,
        CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0",
        CUBEHOOK_JOB_RETRY_INTERVALS="0,0",
        CUBEHOOK_SESSION_LOCK_SECONDS="3",
        CUBEHOOK_PENDING_RECHECK_INTERVALS="1,1",
        CUBEHOOK_LOG_LEVEL="WARNING",
    )


@pytest.fixture
def settings_for(make_settings: Callable[..., Settings]) -> Settings:
    """The intake's settings: retries are declared when a job is queued, so they are set here."""
    return make_settings(job_retry_intervals="0,0")


def submit(settings: Settings, redis: Redis, session_id: str, n: int = 1) -> None:
    queue = EventQueue(redis, settings)
    for i in range(n):
        queue.submit(EventRef(f"evt-{session_id[:6]}-{i}", "workflowSession.completed", "workflowSession",
                              session_id, "2025-01-13T11:39:30.500Z"))  # fmt: skip


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CUBEHOOK, "worker", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def event_jobs(queue: Queue) -> list[Job]:
    """The finished jobs that processed events (not the actions their decisions queued)."""
    jobs = [queue.fetch_job(job_id) for job_id in queue.finished_job_registry.get_job_ids()]
    return [job for job in jobs if job is not None and job.func_name == "workers.jobs.process_event"]


def history(redis: Redis, session_id: str) -> list[Decision]:
    return SessionStore(redis, 3, seal=SEAL).history(session_id)


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_two_workers_racing_on_one_session_decide_once(
    env: dict[str, str], sim: SimServer, redis: Redis, settings_for: Settings
) -> None:
    sim.faults(seed=1, latency_ms=100)
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    queue = rq_queue("cubehook", redis)
    # Both workers listening before the events arrive: a worker that is still starting (imports, the
    # database's migration) when the other has drained the queue would race nobody.
    workers = [start_worker(env) for _ in range(2)]
    try:
        wait_for(lambda: len(Worker.all(queue=queue)) == 2, timeout=60, what="both workers to listen")
        submit(settings_for, redis, sid, n=12)
        wait_for(lambda: len(event_jobs(queue)) == 12, timeout=120, what="the 12 events")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
    jobs = event_jobs(queue)
    assert len({job.worker_name for job in jobs}) == 2  # both took part
    results = sorted(job.return_value()["result"] for job in jobs)  # type: ignore[index]
    assert results.count("decided") == 1
    assert set(results) <= {"decided", "unchanged", "coalesced", "covered"}
    assert [d.outcome for d in history(redis, sid)] == ["rejected"]


def test_a_worker_killed_mid_job_is_rerun_without_a_second_decision(
    env: dict[str, str], sim: SimServer, redis: Redis, settings_for: Settings
) -> None:
    sim.faults(seed=1, latency_ms=5000)  # every API answer takes 5 s: time to kill the worker
    sid = sim.create(preset="attention", mode="settled")["sessionId"]
    submit(settings_for, redis, sid)
    worker = start_worker(env)
    queue = rq_queue("cubehook", redis)
    started = StartedJobRegistry(queue=queue)
    wait_for(lambda: started.count == 1, what="the job to start")
    # Into its first API call (5 s long): RQ has finished marking the job started by then, so its
    # cleanup below treats it as abandoned (killed earlier, its status may not say STARTED yet,
    # and RQ's cleanup skips such an entry).
    time.sleep(1)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    assert history(redis, sid) == []
    # RQ notices a dead worker's job once its heartbeat lapses (a minute at least) and a worker's
    # maintenance runs; run that same cleanup now, as if that minute had passed.
    started.cleanup(timestamp=time.time() + 3600)
    assert queue.count == 1  # re-queued: the job had retries left
    # The dead worker also held RQ's scheduler lock, which lapses after 61 s: let it lapse now.
    assert redis.delete("rq:scheduler-lock:cubehook") == 1
    sim.faults()
    # The re-run finds the session still held by the dead worker (a 3 s lease): it hands off at
    # once and schedules a follow-up for when that lease is over, which makes the decision. (On a
    # slow machine the lease may be over before the worker is up: then the re-run decides.)
    rerun = start_worker(env)
    try:
        decisions = wait_for(lambda: history(redis, sid), timeout=60, what="a decision")
    finally:
        rerun.send_signal(signal.SIGTERM)
        rerun.wait(timeout=30)
    assert [d.outcome for d in decisions] == ["attention"]
    # The re-run hands off, or decides, or (the database busy with the other processes, or
    # ComplyCube slow) is put back and its copy does one of those: never a second decision.
    results = [job.return_value()["result"] for job in event_jobs(queue)]  # type: ignore[index]
    assert results
    assert set(results) <= {"coalesced", "decided", "waiting_for_infrastructure"}


def test_pending_checks_that_never_finish_are_decided_attention(
    env: dict[str, str], sim: SimServer, redis: Redis, settings_for: Settings
) -> None:
    sid = sim.create(preset="pending_check", mode="settled")["sessionId"]
    submit(settings_for, redis, sid)
    worker = start_worker(env)  # with RQ's scheduler: it runs the re-checks when they are due
    try:
        decisions = wait_for(lambda: history(redis, sid), timeout=60, what="a decision")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    [decision] = decisions
    assert decision.outcome == "attention"
    assert decision.needs_review
    assert decision.reasons[-1].startswith("checks still pending after 2 s")
    assert decision.trigger.startswith("recheck-")


def test_a_worker_killed_between_sending_and_recording_sends_once_in_effect(
    env: dict[str, str],
    sim: SimServer,
    redis: Redis,
    settings_for: Settings,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    """The target got the decision, the worker died before writing it down: the re-run sends it
    again with the same idempotency key, and the target keeps one."""
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f'[action.hook]\ntype = "webhook"\nurl = "{receiver.url}/decisions"\nsecret_env = "HOOK_SECRET"\n'
        '[[rule]]\nname = "all"\nactions = ["hook"]\n'
    )
    env = dict(env, CUBEHOOK_RULES_FILE=str(rules), HOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
               CUBEHOOK_ACTION_RETRY_INTERVALS="0,0")  # fmt: skip
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    submit(settings_for, redis, sid)
    receiver.delay = 30  # the target takes the request and is slow to answer
    worker = start_worker(env)
    wait_for(lambda: receiver.requests, what="the decision to reach the target")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    [decision] = history(redis, sid)
    queue = rq_queue("cubehook", redis)
    StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)  # RQ's maintenance, as above
    receiver.delay = 0
    rerun = start_worker(env, "--burst")
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    ids = [headers["webhook-id"] for _, headers, _ in receiver.requests]
    assert ids == [f"{decision.decision_id}.hook"] * 2  # sent twice, one message: the target drops the copy
    [entry] = AuditStore.from_url(env["CUBEHOOK_DATABASE_URL"]).ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"]) == ("sent", 2)
