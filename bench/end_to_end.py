"""The whole system under a steady load: simulator -> web -> workers -> a webhook action's target.

Sessions are started at a steady rate in the simulator (latency L on every API answer); each sends
six webhooks (started, processing, three checks, completed) to the web process; the workers fetch,
decide and send each decision to a receiver in this process. Prints throughput, the p50/p99 time
from a session's `completed` event to its decision reaching the receiver, the memory (RSS) of the
web and worker processes, the counts of events sent, decisions made and actions received, which
must match, and the ComplyCube calls per decided session (counted at the simulator).
``--step-seconds`` spaces each session's status changes (its webhooks) as a real onboarding would.
Run: ``.venv/bin/python bench/end_to_end.py [--sessions 1667] [--rate 17] [--workers 4] [--step-seconds 0]``;
``--smoke``: 4 sessions at 4/s through one worker, only to prove it still runs.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx2
import uvicorn
from redis import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.rq_jobs import rq_queue
from workers.seal import DecisionSeal
from workers.sessions import SessionStore

DECISION_KEY = secrets.token_hex(32)  # the workers' seal on decisions (workers/seal.py)

CUBEHOOK = str(Path(sys.executable).parent / "cubehook")
SECRET, HOOK_SECRET, KEY = "bench_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "test_bench_key"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    # 1,667 sessions of six events: 10,002 events at about 100 events/s.
    parser.add_argument("--sessions", type=int, default=None, help="[1667; 4 with --smoke]")
    parser.add_argument(
        "--rate", type=float, default=None, help="sessions started per second [17; 4 with --smoke]"
    )
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=None, help="[4; 1 with --smoke]")
    parser.add_argument("--step-seconds", type=float, default=0.0)
    parser.add_argument("--defer-seconds", type=int, default=20, help="CUBEHOOK_EVENT_DEFER_SECONDS")
    parser.add_argument("--settle-seconds", type=float, default=0.0, help="wait before counting calls")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    args.sessions = args.sessions or (4 if args.smoke else 1667)
    args.rate = args.rate or (4.0 if args.smoke else 17.0)
    args.workers = args.workers or (1 if args.smoke else 4)
    received: dict[str, float] = {}  # session id -> when its decision arrived

    async def decision(request: Request) -> JSONResponse:
        document = json.loads(await request.body())
        received.setdefault(document["session_id"], time.time())
        return JSONResponse({"ok": True})

    receiver_port = free_port()
    target = Starlette(routes=[Route("/d", decision, methods=["POST"])])
    receiver = uvicorn.Server(uvicorn.Config(target, port=receiver_port, log_config=None, access_log=False))
    threading.Thread(target=receiver.run, daemon=True).start()
    web_port, admin_port, sim_port = free_port(), free_port(), free_port()
    with EmbeddedRedis() as redis_server, tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.toml"
        url = f"http://127.0.0.1:{receiver_port}/d"
        rules.write_text(
            f'[action.hook]\ntype = "webhook"\nurl = "{url}"\nsecret_env = "HOOK_SECRET"\n'
            '[[rule]]\nname = "all"\nactions = ["hook"]\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")} | {
            "CUBEHOOK_ENV_FILE": ""
        }  # nor var/dev.env
        env.update(
            CUBEHOOK_DECISION_KEYS=DECISION_KEY,
            CUBEHOOK_REDIS_URL=redis_server.url, CUBEHOOK_WEBHOOK_SECRETS=SECRET, CUBEHOOK_PORT=str(web_port),
            CUBEHOOK_ADMIN_PORT=str(admin_port),
            CUBEHOOK_COMPLYCUBE_BASE_URL=f"http://127.0.0.1:{sim_port}/v1", CUBEHOOK_COMPLYCUBE_API_KEY=KEY,
            CUBEHOOK_ALLOW_INSECURE_TRANSPORT="true",  # the simulator and the receiver speak plain HTTP
            CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0", CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp}/audit.db",
            CUBEHOOK_RULES_FILE=str(rules), HOOK_SECRET=HOOK_SECRET, CUBEHOOK_LOG_LEVEL="WARNING",
            CUBEHOOK_LOG_FORMAT="json", CUBEHOOK_EVENT_DEFER_SECONDS=str(args.defer_seconds),
        )  # fmt: skip
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        simulate = [
            CUBEHOOK,
            "simulate",
            "--port",
            str(sim_port),
            "--api-key",
            KEY,
            "--webhook-secret",
            SECRET,
        ]
        simulate += ["--latency-ms", str(args.latency_ms), "--step-seconds", str(args.step_seconds)]
        simulate += ["--webhook-url", f"http://127.0.0.1:{web_port}/webhooks/complycube"]
        sim = subprocess.Popen(simulate, env=env, **quiet)  # type: ignore[call-overload]
        web = subprocess.Popen([CUBEHOOK, "web"], env=env, **quiet)  # type: ignore[call-overload]
        workers = [subprocess.Popen([CUBEHOOK, "worker"], env=env, **quiet) for _ in range(args.workers)]  # type: ignore[call-overload]
        try:
            wait_ready(f"http://127.0.0.1:{sim_port}/_sim/health")
            wait_ready(f"http://127.0.0.1:{admin_port}/readyz")
            time.sleep(2)  # workers up and migrated
            started = time.time()
            with httpx2.Client(timeout=10) as http:
                for n in range(args.sessions):
                    time.sleep(max(0.0, started + n / args.rate - time.time()))
                    http.post(f"http://127.0.0.1:{sim_port}/_sim/sessions", json={"preset": "clear"})
            deadline = time.time() + 300
            while len(received) < args.sessions and time.time() < deadline:
                time.sleep(0.2)
            elapsed = time.time() - started
            time.sleep(args.settle_seconds)  # events looked at later have their look (or not) too
            calls = httpx2.get(f"http://127.0.0.1:{sim_port}/_sim/calls", timeout=10).json()
            memory = {"web": rss_mb(web.pid), "worker": max(rss_mb(w.pid) for w in workers)}
            cpu = {"simulator": cpu_seconds(sim.pid), "web": cpu_seconds(web.pid)}
            cpu["workers"] = sum(cpu_seconds(w.pid) for w in workers)
            cpu["this process"] = time.process_time()
            deliveries = httpx2.get(f"http://127.0.0.1:{sim_port}/_sim/deliveries", timeout=10).json()
            redis = Redis.from_url(redis_server.url)
            store = SessionStore(redis, 60, seal=DecisionSeal((DECISION_KEY.encode(),)))
            results = Counter(_event_results(redis))
            sessions_decided = sum(1 for sid in received if store.current(sid) is not None)
        finally:
            for process in [*workers, web, sim]:
                process.terminate()
                process.wait(timeout=20)
            receiver.should_exit = True
    events_ok = sum(1 for d in deliveries if d["outcome"] in ("200", "202"))
    latencies = _latencies(deliveries, received)
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    setup = f"simulator latency {args.latency_ms:.0f} ms, {args.workers} workers"
    print(f"{args.sessions} sessions at {args.rate:.0f}/s, {setup}")
    print(f"events delivered {events_ok}, sessions decided {sessions_decided}")
    print(f"decisions at the target {len(received)} (must equal both)")
    print(f"throughput {events_ok / elapsed:.0f} events/s over {elapsed:.1f} s")
    p50, p99 = cuts[49] * 1000, cuts[98] * 1000
    print(f"completed event -> decision at the target: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    print(f"RSS: web {memory['web']:.0f} MB, worker {memory['worker']:.0f} MB")
    print("CPU seconds: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items()))
    per_session = calls["total"] / max(1, sessions_decided)
    routes = ", ".join(f"{route} {n}" for route, n in sorted(calls["routes"].items()))
    print(f"ComplyCube calls {calls['total']}: {per_session:.2f} per decided session ({routes})")
    print("event jobs: " + ", ".join(f"{result} {n}" for result, n in results.most_common()))


def _event_results(redis: Redis) -> list[str]:
    """What each finished event job came to: decided, deferred, covered, progress, ..."""
    queue = rq_queue("cubehook", redis)
    out = []
    for job_id in queue.finished_job_registry.get_job_ids():
        job = queue.fetch_job(job_id)
        if job is not None and job.func_name == "workers.jobs.process_event":
            result = job.return_value()
            out.append(str(result.get("result")) if isinstance(result, dict) else "?")
    return out


def _latencies(deliveries: list[dict[str, object]], received: dict[str, float]) -> list[float]:
    """From each session's `completed` event (as the simulator stamped it) to its decision's arrival."""
    out = []
    for delivery in deliveries:
        if delivery["type"] != "workflow.session.completed" or delivery["outcome"] not in ("200", "202"):
            continue
        session_id = str(delivery["resourceId"])
        if session_id in received:
            out.append(received[session_id] - float(str(delivery["at"])))
    return out


if __name__ == "__main__":
    main()
