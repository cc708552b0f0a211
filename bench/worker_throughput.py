"""Worker throughput against the ideal, with the simulator answering after latency L.

A session costs about two round trips when its checks are fetched at once (the session, then its
three checks together), so one worker's ideal is 1 / (2 L) sessions per second. This runs N
sessions through 1, 2 and 4 `cubehook worker` processes (RQ's SimpleWorker) and through one
forking worker (RQ's Worker), all in this run, and prints sessions/s and the ratio to the ideal.
The time is from the first job's start to the last job's end, as RQ recorded them, so process
start-up is not counted. The rate limiter is off: ComplyCube's own limit (10 requests/s) would
cap a fleet at 2.5 sessions/s, whatever the workers can do.

Run: ``.venv/bin/python bench/worker_throughput.py [--latency-ms 50] [--sessions 80]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from redis import Redis
from rq import Queue

from service.demo import wait_ready
from service.devredis import EmbeddedRedis, free_port
from service.queue import EventQueue, EventRef
from service.settings import Settings

CUBEHOOK = str(Path(sys.executable).parent / "cubehook")
API_KEY = "test_bench_key"


def run(
    redis_url: str, database_url: str, simulator: str, sessions: list[str], workers: int, worker_class: str
) -> float:
    redis = Redis.from_url(redis_url)
    redis.flushall()
    settings = Settings(redis_url=redis_url, webhook_secrets="bench")
    intake = EventQueue(redis, settings)
    for n, session_id in enumerate(sessions):
        intake.submit(EventRef(f"bench-{n}", "workflowSession.completed", "workflowSession", session_id, "t"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")}
    env.update(
        CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_COMPLYCUBE_BASE_URL=f"{simulator}/v1",
        CUBEHOOK_ALLOW_INSECURE_TRANSPORT="true",
        CUBEHOOK_COMPLYCUBE_API_KEY=API_KEY, CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0",
        CUBEHOOK_WORKER_CLASS=worker_class, CUBEHOOK_LOG_LEVEL="WARNING", CUBEHOOK_DATABASE_URL=database_url,
    )  # fmt: skip
    procs = [
        subprocess.Popen([CUBEHOOK, "worker", "--burst"], env=env, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.wait(timeout=600)
    queue = Queue("cubehook", connection=redis)
    jobs = [queue.fetch_job(job_id) for job_id in queue.finished_job_registry.get_job_ids()]
    done = [
        job
        for job in jobs
        if job is not None
        and job.started_at
        and job.ended_at
        and job.func_name == "workers.jobs.process_event"
    ]  # the sessions; their decisions' action jobs (a log line each) are not counted
    assert len(done) == len(sessions), f"{len(done)} of {len(sessions)} jobs finished"
    start = min(job.started_at for job in done if job.started_at)
    end = max(job.ended_at for job in done if job.ended_at)
    redis.close()
    return len(sessions) / (end - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--sessions", type=int, default=80)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    ideal = 1 / (2 * latency)
    port = free_port()
    simulator = f"http://127.0.0.1:{port}"
    with EmbeddedRedis() as redis_server, tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/audit.db"
        command = [CUBEHOOK, "simulate", "--port", str(port), "--api-key", API_KEY]
        command += ["--latency-ms", str(args.latency_ms)]
        sim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"{simulator}/_sim/health")
            spec = {"preset": "clear", "mode": "settled"}
            sessions = [
                httpx2.post(f"{simulator}/_sim/sessions", json=spec).json()["sessionId"]
                for _ in range(args.sessions)
            ]
            print(f"{args.sessions} sessions, 3 checks each, simulator latency L = {args.latency_ms:.0f} ms")
            print(f"ideal for one worker 1/(2L) = {ideal:.1f} sessions/s")
            for workers, worker_class in ((1, "simple"), (1, "fork"), (2, "simple"), (4, "simple")):
                rate = run(redis_server.url, database_url, simulator, sessions, workers, worker_class)
                share = rate / (ideal * workers)
                print(
                    f"{workers} x {worker_class:<6} {rate:6.1f} sessions/s   "
                    f"{rate / ideal:4.2f}x one worker's ideal   {share:4.2f} of {workers}x ideal"
                )
                time.sleep(0.2)
        finally:
            sim.terminate()
            sim.wait(timeout=10)


if __name__ == "__main__":
    main()
