"""Redis bytes per event and per decided session, and the steady state they give at 1M events a month.

Runs N three-check sessions through the intake's script and a `cubehook worker` (every webhook a
session sends: started, processing, completed, one per check, and a copy of `completed`), then
weighs every key Redis holds with MEMORY USAGE, grouped by what it is for. Each group's steady
state is its bytes per unit times the units alive at once: the monthly rate times how long a unit
lives (its TTL). Printed beside it, the same sizes under the lifetimes of the release before this
one (results kept 7 days, session state and the check index kept for ever: after a year), as the
baseline the ratio is taken against.

Run: ``.venv/bin/python bench/redis_sizing.py [--sessions 200] [--smoke]`` (``--smoke``: 5 sessions,
only to prove it still runs).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import httpx2
from redis import Redis

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.queue import EventQueue
from service.rq_jobs import EventRef
from service.settings import DAY, Settings

DECISION_KEY = secrets.token_hex(32)  # the workers' seal on decisions (workers/seal.py)

CUBEHOOK = str(Path(sys.executable).parent / "cubehook")
API_KEY = "test_bench_key"
MONTH = 30 * DAY
EVENTS_A_MONTH = 1_000_000

# group: (how its key names start, the key that counts one unit, units a month at 1M events, its
# lifetime now (s), its lifetime in the release before (s)). A session sends 7 webhooks (6 events,
# `completed` twice) and makes 7 jobs (6 events, 1 action).
SESSIONS = EVENTS_A_MONTH / 7
GROUPS: dict[str, tuple[tuple[str, ...], str, float, float, float]] = {
    "seen key, per event": (("cubehook:seen:",), "cubehook:seen:", 6 * SESSIONS, 30 * DAY, 30 * DAY),
    "copies counter, per copied event": (("cubehook:copies:",), "cubehook:copies:", SESSIONS, 3600, 0),
    "RQ job + result, per job": (("rq:job:", "rq:results:"), "rq:job:", 7 * SESSIONS, 600, 7 * DAY),
    "session state, per session": (("cubehook:session:",), ":state", SESSIONS, 7 * DAY, 365 * DAY),
    "check index, per check": (("cubehook:check:",), "cubehook:check:", 3 * SESSIONS, 7 * DAY, 365 * DAY),
}


def weigh(redis: Redis) -> dict[str, tuple[int, int]]:
    """Bytes and units per group."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key in redis.scan_iter(count=1000):
        name = key.decode()
        for group, (prefixes, unit, *_rest) in GROUPS.items():
            if name.startswith(prefixes):
                found[group][0] += int(redis.memory_usage(key) or 0)
                found[group][1] += unit in name
    return {group: (size, units) for group, (size, units) in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=None, help="[200; 5 with --smoke]")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    args.sessions = args.sessions or (5 if args.smoke else 200)
    port = free_port()
    simulator = f"http://127.0.0.1:{port}"
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory() as tmp:
        sim = subprocess.Popen([CUBEHOOK, "simulate", "--port", str(port), "--api-key", API_KEY],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_ready(f"{simulator}/_sim/health")
            redis = Redis.from_url(server.url)
            intake = EventQueue(redis, Settings(redis_url=server.url, webhook_secrets="bench"))
            jobs = 0
            for n in range(args.sessions):
                created = httpx2.post(
                    f"{simulator}/_sim/sessions", json={"preset": "clear", "mode": "settled"}
                )
                sid = created.json()["sessionId"]
                session = httpx2.get(
                    f"{simulator}/v1/workflowSessions/{sid}", headers={"Authorization": API_KEY}
                )
                events = [(f"s{n}-{kind}", f"workflow.session.{kind}", "session", sid)
                          for kind in ("started", "processing", "completed")]  # fmt: skip
                events += [(f"c{n}-{ref['checkId']}", "check.completed", "check", ref["checkId"])
                           for ref in session.json()["allRelatedChecks"]]  # fmt: skip
                events.append(events[2])  # ComplyCube sends `completed` twice
                for event_id, kind, resource, resource_id in events:
                    intake.submit(EventRef(event_id, kind, resource, resource_id, "2026-11-29T00:00:00.000Z"))
            env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")} | {
                "CUBEHOOK_ENV_FILE": ""
            }  # nor var/dev.env
            env.update(
                CUBEHOOK_DECISION_KEYS=DECISION_KEY,
                CUBEHOOK_REDIS_URL=server.url, CUBEHOOK_COMPLYCUBE_BASE_URL=f"{simulator}/v1",
                CUBEHOOK_ALLOW_INSECURE_TRANSPORT="true", CUBEHOOK_COMPLYCUBE_API_KEY=API_KEY,
                CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0", CUBEHOOK_LOG_LEVEL="WARNING",
                CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp}/audit.db", CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS="0",
                CUBEHOOK_EVENT_DEFER_SECONDS="0",
            )  # fmt: skip
            subprocess.run([CUBEHOOK, "worker", "--burst"], env=env, check=True, stderr=subprocess.DEVNULL)
            weights = weigh(redis)
            jobs = weights.get("RQ job + result, per job", (0, 0))[1]
        finally:
            sim.terminate()
            sim.wait(timeout=10)
    print(f"{args.sessions} sessions of 3 checks, 7 webhooks each ({jobs} RQ jobs kept)")
    print(f"{'':38}{'bytes/unit':>11}{'now MB':>10}{'before MB':>11}")
    total_now = total_before = 0.0
    for group, (_prefixes, _unit, monthly, now_life, before_life) in GROUPS.items():
        size, units = weights.get(group, (0, 0))
        unit = size / units if units else 0.0
        now_mb = unit * monthly * now_life / MONTH / 1e6
        before_mb = unit * monthly * before_life / MONTH / 1e6
        total_now, total_before = total_now + now_mb, total_before + before_mb
        print(f"{group:38}{unit:11.0f}{now_mb:10.1f}{before_mb:11.1f}")
    print(f"{'steady state at 1M events a month':38}{'':11}{total_now:10.1f}{total_before:11.1f}")
    print(f"now / before = {total_now / total_before:.2f}")


if __name__ == "__main__":
    main()
