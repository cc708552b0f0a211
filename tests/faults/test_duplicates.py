"""Every event delivered ten times at once, in shuffled order, through the real web process and
real workers: the same decisions as an orderly run of the same presets, each made once, each
delivered once."""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections import Counter
from pathlib import Path

import httpx2
import pytest
from redis import Redis

from cubehook_dev.devredis import free_port
from service.rq_jobs import rq_queue
from tests.conftest import SEAL, SECRET, Receiver, SimServer, event_body, signature
from tests.e2e.conftest import CUBEHOOK, running
from tests.faults.conftest import check_once, setup
from workers.sessions import SessionStore

pytestmark = pytest.mark.e2e
PRESETS = ["clear", "attention", "rejected", "disagree", "failed", "clear"]
COPIES = 10


def events_of(sim: SimServer, session_id: str) -> list[bytes]:
    """The six webhooks of one session, as ComplyCube sends them: started, processing, one per
    check, completed."""
    checks = [ref["checkId"] for ref in sim.session(session_id)["allRelatedChecks"]]
    bodies = [
        event_body(f"{session_id}-{kind}", f"workflowSession.{kind}", "workflowSession", session_id)
        for kind in ("started", "processing", "completed")
    ]
    bodies += [event_body(f"{check}-done", "check.completed.clear", "check", check) for check in checks]
    return bodies


async def deliver(url: str, bodies: list[bytes], copies: int) -> list[tuple[str, int]]:
    """Each body ``copies`` times, all at once; the event id and status of every answer."""
    async with httpx2.AsyncClient(timeout=30) as client:

        async def post(body: bytes) -> tuple[str, int]:
            answer = await client.post(url, content=body, headers=signature(body))
            return body.split(b'"id": "', 1)[1].split(b'"', 1)[0].decode(), answer.status_code

        return await asyncio.gather(*(post(body) for body in bodies for _ in range(copies)))


def decide(
    sim: SimServer, redis_url: str, receiver: Receiver, tmp_path: Path, copies: int, seed: int | None
) -> dict[str, str]:
    """Send every event of one session per preset, ``copies`` times each, shuffled when ``seed`` is
    given; let two workers finish; the outcome decided for each preset's session."""
    tmp_path.mkdir()
    env = setup(sim, redis_url, receiver, tmp_path)
    sessions = {sim.create(preset=p, mode="settled")["sessionId"]: p for p in PRESETS}
    bodies = [body for sid in sessions for body in events_of(sim, sid)]
    if seed is not None:
        random.Random(seed).shuffle(bodies)
    port = free_port()
    env.update(CUBEHOOK_PORT=str(port), CUBEHOOK_WEBHOOK_SECRETS=SECRET)
    url = f"http://127.0.0.1:{port}"
    with running([CUBEHOOK, "web"], env, f"{url}/healthz"):
        answers = asyncio.run(deliver(f"{url}/webhooks/complycube", bodies, copies))
    by_event = Counter((event_id, status) for event_id, status in answers)
    for event_id in {event_id for event_id, _ in answers}:  # one accepted, the other copies duplicates
        assert by_event[event_id, 202] == 1, event_id
        assert by_event[event_id, 200] == copies - 1, event_id
    done = subprocess.run([CUBEHOOK, "worker", "--burst"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    redis = Redis.from_url(redis_url)
    queue = rq_queue("cubehook", redis)
    processed = [
        job for job_id in queue.finished_job_registry.get_job_ids()
        if (job := queue.fetch_job(job_id)) is not None and job.func_name == "workers.jobs.process_event"
    ]  # fmt: skip
    assert len(processed) == len(bodies)  # one job per event, however many copies came
    store = SessionStore(redis, 2, seal=SEAL)
    outcomes = {}
    for sid, preset in sessions.items():
        [decision] = store.history(sid)
        outcomes[sid] = f"{preset}: {decision.outcome}"
    check_once(redis_url, env, {sid: store.history(sid)[0].outcome or "" for sid in sessions}, receiver)
    redis.flushall()
    receiver.requests.clear()
    return dict(sorted(outcomes.items(), key=lambda item: PRESETS.index(item[1].split(":")[0])))


def test_ten_copies_of_each_event_at_once_in_shuffled_order_decide_as_an_orderly_run(
    sim: SimServer, redis_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    orderly = decide(sim, redis_url, receiver, tmp_path / "orderly", copies=1, seed=None)
    chaotic = decide(sim, redis_url, receiver, tmp_path / "chaotic", copies=COPIES, seed=11)
    assert sorted(orderly.values()) == sorted(chaotic.values())
    assert sorted(orderly.values()) == sorted(
        ["clear: clear", "attention: attention", "rejected: rejected", "disagree: rejected",
         "failed: attention", "clear: clear"]
    )  # fmt: skip
