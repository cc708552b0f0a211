"""How long a job of a SIGKILLed worker waits before it has run to its end elsewhere.

Two `cubehook worker` processes (default leases: CUBEHOOK_JOB_LEASE_SECONDS=15, sweep every 5 s)
work through sessions whose API calls take L = 300 ms, so a worker is nearly always inside a job.
At random instants one of them is SIGKILLed with its RQ scheduler and restarted at once. For each
kill, the jobs the victim held are noted (RQ's started registry names their worker), and their delay
is the time from the kill to their end in RQ's records. Printed: each delay, the worst against the
README's bound (90 s), and against what RQ alone gave a SimpleWorker's job (its timeout plus 60 s,
then the next registry clean-up: 360-420 s with the defaults).

Run: ``.venv/bin/python bench/recovery.py [--kills 8] [--sessions 120] [--smoke]``. ``--smoke``, only
to prove it still runs: one kill among 16 sessions, with 3 s leases swept every second and 3 s
session locks (the delays are then no measure of the defaults).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from redis import Redis
from rq import Queue, Worker
from rq.executions import Execution

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.queue import EventQueue
from service.rq_jobs import EventRef, rq_queue
from service.settings import Settings

DECISION_KEY = secrets.token_hex(32)  # the workers' seal on decisions (workers/seal.py)

CUBEHOOK = str(Path(sys.executable).parent / "cubehook")
API_KEY = "test_bench_key"
BOUND = 90.0
RQ_ALONE = 360.0  # a SimpleWorker job's heartbeat TTL with a 300 s timeout, before any clean-up


def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CUBEHOOK, "worker"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _text(value: object) -> str:
    """A Redis reply as text (this client answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def held_by(redis: Redis, queue: Queue, pid: int) -> list[str]:
    """The jobs the worker process ``pid`` has registered as started."""
    names = {w.name for w in Worker.all(queue=queue) if w.pid == pid}
    held = []
    for entry in redis.zrange(queue.started_job_registry.key, 0, -1):
        execution = Execution.from_composite_key(_text(entry), redis)
        worker = redis.hget(execution.key, "worker_name")
        if worker is not None and _text(worker) in names:
            held.append(execution.job_id)
    return held


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=None, help="[8; 1 with --smoke]")
    parser.add_argument("--sessions", type=int, default=None, help="[120; 16 with --smoke]")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    args.kills = args.kills or (1 if args.smoke else 8)
    args.sessions = args.sessions or (16 if args.smoke else 120)
    # Short leases and locks in smoke mode, so that a killed worker's job is back within seconds.
    leases = {"JOB_LEASE_SECONDS": "3", "RECOVERY_INTERVAL_SECONDS": "1", "SESSION_LOCK_SECONDS": "3"}
    rng = random.Random(5)
    port = free_port()
    simulator = f"http://127.0.0.1:{port}"
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory() as tmp:
        sim = subprocess.Popen(
            [CUBEHOOK, "simulate", "--port", str(port), "--api-key", API_KEY, "--latency-ms", "300"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        redis = Redis.from_url(server.url)
        workers: list[subprocess.Popen[bytes]] = []
        try:
            wait_ready(f"{simulator}/_sim/health")
            sessions = [
                httpx2.post(f"{simulator}/_sim/sessions", json={"preset": "clear", "mode": "settled"}).json()[
                    "sessionId"
                ]
                for _ in range(args.sessions)
            ]
            intake = EventQueue(redis, Settings(redis_url=server.url, webhook_secrets="bench"))
            for n, sid in enumerate(sessions):
                intake.submit(
                    EventRef(f"bench-{n}", "workflow.session.completed", "workflowSession", sid, "t")
                )
            env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")} | {
                "CUBEHOOK_ENV_FILE": ""
            }  # nor var/dev.env
            env.update(
                CUBEHOOK_DECISION_KEYS=DECISION_KEY,
                CUBEHOOK_REDIS_URL=server.url, CUBEHOOK_COMPLYCUBE_BASE_URL=f"{simulator}/v1",
                CUBEHOOK_ALLOW_INSECURE_TRANSPORT="true",
                CUBEHOOK_COMPLYCUBE_API_KEY=API_KEY, CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0",
                CUBEHOOK_LOG_LEVEL="WARNING", CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp}/audit.db",
                CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS="0",
            )  # fmt: skip
            env.update({f"CUBEHOOK_{name}": value for name, value in leases.items()} if args.smoke else {})
            queue = rq_queue("cubehook", redis)
            workers = [start(env), start(env)]
            kills: list[tuple[float, list[str]]] = []
            for n in range(args.kills):
                time.sleep(rng.uniform(1.0, 3.0))
                victim = workers[n % 2]
                held = held_by(redis, queue, victim.pid)
                os.killpg(victim.pid, signal.SIGKILL)
                killed = time.time()
                victim.wait(timeout=10)
                workers[n % 2] = start(env)
                kills.append((killed, held))
            deadline = time.monotonic() + 300
            while queue.count or queue.started_job_registry.get_job_ids(cleanup=False):
                if time.monotonic() > deadline:
                    raise SystemExit("the queue did not drain in 300 s")
                time.sleep(0.5)
            delays = []
            for killed, held in kills:
                for job_id in held:
                    job = queue.fetch_job(job_id)
                    ended = job.ended_at if job is not None else None
                    if ended is not None:
                        delays.append(ended.timestamp() - killed)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
                    worker.wait(timeout=30)
            sim.terminate()
            sim.wait(timeout=10)
            redis.close()
    lease = "3 s leases (smoke)" if args.smoke else "default leases"
    print(f"{args.kills} kills, {len(delays)} jobs caught mid-run; API latency 300 ms; {lease}")
    print("delays (s): " + ", ".join(f"{d:.1f}" for d in sorted(delays)))
    if delays:
        worst = max(delays)
        print(f"median {statistics.median(delays):.1f} s, worst {worst:.1f} s")
        print(f"worst / bound ({BOUND:.0f} s) = {worst / BOUND:.2f}; worst / RQ alone ({RQ_ALONE:.0f} s+) = "
              f"{worst / RQ_ALONE:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
