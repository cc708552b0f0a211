"""Worker throughput, in two modes, each against a figure measured or derived in the same run.

``--mode latency`` (the default): the simulator answers after latency L and there is no rate
limit. A session costs two round trips (the session, then its checks in one list call), so one
worker's ideal is 1 / (2 L) sessions/s. N sessions of 3 checks run through 1, 2 and 4
`cubehook worker` processes (RQ's SimpleWorker) and one forking worker (RQ's Worker).

``--mode rate``: ComplyCube's rate limit is what caps a fleet (10 requests/s live, 5/s sandbox),
so sessions/s at a fleet limit R should approach R / 2. Low latency, two workers sharing the
limiter. First a baseline: N running sessions, one call each, show the call rate the limiter
really gives on this machine (B); then N complete sessions of 3 checks and of 10 checks, each
with one event, against R / 2 and B / 2; then the same sessions with every webhook ComplyCube
sends for them (started, processing, one per check, completed; a fifth of them delivered twice),
all at once, as after an outage. API calls are counted at the simulator, not in the client.

Times run from the first job's start to the end of the last job that looked (decided, or found
a running session), as RQ recorded them: process start-up is not counted, nor the events put back
for later that those looks covered (they cost no call, and run later).

Run: ``.venv/bin/python bench/worker_throughput.py [--mode rate] [--latency-ms 50] [--sessions 80]
[--rate-limit 5] [--smoke]``. ``--smoke``, only to prove it still runs: 4 sessions; in latency mode
1 and 2 workers (not 4), in rate mode R = 50/s and 3 checks (not 10).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
from redis import Redis

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.queue import EventQueue
from service.rq_jobs import EventRef, rq_queue
from service.settings import Settings
from workers.seal import DecisionSeal
from workers.sessions import SessionStore

DECISION_KEY = secrets.token_hex(32)  # the workers' seal on decisions (workers/seal.py)

CUBEHOOK = str(Path(sys.executable).parent / "cubehook")
API_KEY = "test_bench_key"
STANDARD = ["document_check", "identity_check", "extensive_screening_check"]


@dataclass
class Run:
    sessions: int
    seconds: float
    calls: int
    decided: int

    @property
    def rate(self) -> float:
        return self.sessions / self.seconds

    @property
    def calls_each(self) -> float:
        return self.calls / self.sessions


@dataclass
class Bench:
    redis_url: str
    database_url: str
    simulator: str

    def create(self, n: int, checks: int, mode: str = "settled") -> list[str]:
        spec = {"mode": mode, "checks": [{"type": STANDARD[k % 3]} for k in range(checks)]}
        return [
            httpx2.post(f"{self.simulator}/_sim/sessions", json=spec).json()["sessionId"] for _ in range(n)
        ]

    def calls(self) -> int:
        return int(httpx2.get(f"{self.simulator}/_sim/calls").json()["total"])

    def run(
        self, events: list[EventRef], sessions: list[str], workers: int, worker_class: str, rate: float
    ) -> Run:
        redis = Redis.from_url(self.redis_url)
        redis.flushall()
        intake = EventQueue(redis, Settings(redis_url=self.redis_url, webhook_secrets="bench"))
        for event in events:
            intake.submit(event)  # a second delivery of an event is refused here, as at the endpoint
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")} | {
            "CUBEHOOK_ENV_FILE": ""
        }  # nor var/dev.env
        env.update(
            CUBEHOOK_DECISION_KEYS=DECISION_KEY,
            CUBEHOOK_REDIS_URL=self.redis_url, CUBEHOOK_COMPLYCUBE_BASE_URL=f"{self.simulator}/v1",
            CUBEHOOK_ALLOW_INSECURE_TRANSPORT="true",
            CUBEHOOK_COMPLYCUBE_API_KEY=API_KEY, CUBEHOOK_COMPLYCUBE_RATE_LIMIT=str(rate),
            CUBEHOOK_WORKER_CLASS=worker_class, CUBEHOOK_LOG_LEVEL="WARNING",
            CUBEHOOK_DATABASE_URL=self.database_url, CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS="0",
        )  # fmt: skip
        calls = self.calls()
        queue = rq_queue("cubehook", redis)
        while True:  # events looked at later run too, so that their calls are counted
            procs = [
                subprocess.Popen([CUBEHOOK, "worker", "--burst"], env=env, stderr=subprocess.DEVNULL)
                for _ in range(workers)
            ]
            for proc in procs:
                proc.wait(timeout=900)
            later = queue.scheduled_job_registry.get_job_ids()
            if not later:
                break
            for job_id in later:  # what RQ's scheduler does when their time comes
                job = queue.fetch_job(job_id)
                if job is not None:
                    queue.scheduled_job_registry.remove(job)
                    queue.enqueue_job(job)
        calls = self.calls() - calls
        jobs = [queue.fetch_job(job_id) for job_id in queue.finished_job_registry.get_job_ids()]
        done = [
            j
            for j in jobs
            if j and j.started_at and j.ended_at and j.func_name == "workers.jobs.process_event"
        ]
        start = min(job.started_at for job in done if job.started_at)
        # Until the last look that did the work (decided, or progress for running sessions): the
        # events looked at later that it covered are off the sessions' path.
        looks = [j for j in done if (j.return_value() or {}).get("result") in ("decided", "progress")]
        end = max(job.ended_at for job in looks or done if job.ended_at)
        store = SessionStore(redis, 60, seal=DecisionSeal((DECISION_KEY.encode(),)))
        decided = sum(1 for sid in sessions if store.current(sid) is not None)
        redis.close()
        return Run(len(sessions), (end - start).total_seconds(), calls, decided)


def one_event_each(sessions: list[str]) -> list[EventRef]:
    return [
        EventRef(f"b{n}", "workflowSession.completed", "workflowSession", s, "t")
        for n, s in enumerate(sessions)
    ]


def every_webhook(bench: Bench, sessions: list[str], rng: random.Random) -> list[EventRef]:
    """What ComplyCube sends for each session, in its order; a fifth of them delivered twice."""
    events = []
    for sid in sessions:
        doc = httpx2.get(
            f"{bench.simulator}/v1/workflowSessions/{sid}", headers={"Authorization": API_KEY}
        ).json()
        mine = [EventRef(f"{sid}-{kind}", f"workflowSession.{kind}", "workflowSession", sid, "t")
                for kind in ("started", "processing")]  # fmt: skip
        mine += [EventRef(f"{c['checkId']}-done", "check.completed", "check", c["checkId"], "t")
                 for c in doc["allRelatedChecks"]]  # fmt: skip
        mine.append(EventRef(f"{sid}-completed", "workflowSession.completed", "workflowSession", sid, "t"))
        events += [e for event in mine for e in ([event, event] if rng.random() < 0.2 else [event])]
    return events


def latency_mode(bench: Bench, args: argparse.Namespace) -> None:
    ideal = 1 / (2 * args.latency_ms / 1000)
    sessions = bench.create(args.sessions, 3)
    print(
        f"{args.sessions} sessions, 3 checks each, simulator latency L = {args.latency_ms:.0f} ms, no limit"
    )
    print(f"ideal for one worker 1/(2L) = {ideal:.1f} sessions/s")
    fleets = ((1, "simple"), (1, "fork"), (2, "simple"), (4, "simple"))
    for workers, worker_class in fleets[:3] if args.smoke else fleets:
        result = bench.run(one_event_each(sessions), sessions, workers, worker_class, 0)
        print(
            f"{workers} x {worker_class:<6} {result.rate:6.1f} sessions/s   {result.rate / ideal:4.2f}x one "
            f"worker's ideal   {result.rate / (ideal * workers):4.2f} of {workers}x ideal   "
            f"{result.calls_each:.2f} calls/session"
        )
        time.sleep(0.2)


def rate_mode(bench: Bench, args: argparse.Namespace) -> None:
    r, n = args.rate_limit, args.sessions
    print(f"fleet rate limit R = {r:g} requests/s, 2 workers, L = {args.latency_ms:g} ms, {n} sessions each")
    running = bench.create(n, 3, mode="manual")  # started: one call each
    base = bench.run(one_event_each(running), running, 2, "simple", r)
    b = base.calls / base.seconds
    print(
        f"baseline, {n} running sessions of {base.calls_each:.2f} calls: B = {b:.2f} calls/s, {b / r:.2f} R"
    )
    for checks in (3,) if args.smoke else (3, 10):
        sessions = bench.create(n, checks)
        one = bench.run(one_event_each(sessions), sessions, 2, "simple", r)
        mix = bench.run(every_webhook(bench, sessions, random.Random(checks)), sessions, 2, "simple", r)
        for name, result in (("one event each", one), ("every webhook", mix)):
            print(
                f"{checks:2d} checks, {name:<15} {result.rate:5.2f} sessions/s   "
                f"{result.rate / (r / 2):4.2f} of R/2   {result.rate / (b / 2):4.2f} of B/2   "
                f"{result.calls_each:.2f} calls/session   "
                f"{result.decided}/{result.sessions} decided"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["latency", "rate"], default="latency")
    parser.add_argument("--latency-ms", type=float, default=None, help="[50 in latency mode, 5 in rate mode]")
    parser.add_argument("--sessions", type=int, default=None, help="[80 in latency mode, 40 in rate mode]")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="R [the sandbox's 5/s; 50 with --smoke]"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    rate = args.mode == "rate"
    args.latency_ms = args.latency_ms if args.latency_ms is not None else (5.0 if rate else 50.0)
    args.sessions = args.sessions or (4 if args.smoke else 40 if rate else 80)
    args.rate_limit = args.rate_limit or (50.0 if args.smoke else 5.0)
    port = free_port()
    simulator = f"http://127.0.0.1:{port}"
    with EmbeddedRedis() as redis_server, tempfile.TemporaryDirectory() as tmp:
        command = [CUBEHOOK, "simulate", "--port", str(port), "--api-key", API_KEY]
        command += ["--latency-ms", str(args.latency_ms)]
        sim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"{simulator}/_sim/health")
            bench = Bench(redis_server.url, f"sqlite:///{tmp}/audit.db", simulator)
            (rate_mode if rate else latency_mode)(bench, args)
        finally:
            sim.terminate()
            sim.wait(timeout=10)


if __name__ == "__main__":
    main()
