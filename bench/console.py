"""The console's pages with 100,000 decisions in PostgreSQL, measured server-side.

Loads 100,000 decisions (a realistic mix: most clear, a third needing a person, some reviewed by a
person, discrepancies on a fifth, ten templates, three months) into a throwaway PostgreSQL database
at 127.0.0.1:5432 through the migrations, then calls the console's ASGI app directly (no sockets, no
client: only the server's work is timed, the login check and the database reads included) for the
review queue's first page, a deep page (by its cursor), filtered pages and a session's page, against
a bare Starlette page returning a constant HTML body, in the same run. Prints p50/p99, the ratio to
the bare page, and the EXPLAIN (ANALYZE) plans of the queue's queries.

Target (docs/console.md): the queue page under 100 ms at p99, through indexed queries only.
Run: ``.venv/bin/python bench/console.py [--decisions N] [--requests N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator_get import _call as call_app  # bench/, on the path when run as a script
from sqlalchemy import create_engine, insert, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from cubehook_console.app import create_console_app
from cubehook_console.queries import QueueFilter, Reviewed, encode_cursor, queue_query
from cubehook_console.settings import ConsoleSettings
from cubehook_console.state import Console
from cubehook_console.users import Role, UserStore
from cubehook_dev.devredis import EmbeddedRedis
from service.settings import Settings
from workers.audit_schema import action_attempts, action_ledger, decision_issues, decisions, events, snapshots

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
ISSUES = ("outcomes_disagree", "check_missing", "unknown_check_outcome", "check_failed")


async def call(app: App, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, float]:
    """One GET, straight into the ASGI app (as bench/simulator_get.py calls one); its status and
    how long the app took (s)."""
    started = time.perf_counter()
    status = await call_app(app, path, headers)
    return status, time.perf_counter() - started


def decision_rows(count: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` decisions (and their discrepancy rows), as the trail holds them after migration 0003."""
    start = datetime(2026, 9, 1, tzinfo=UTC)
    rows, issues = [], []
    for n in range(count):
        decided_at = start + timedelta(seconds=n * 78 + rng.random())  # three months
        outcome = rng.choices(("clear", "attention", "rejected"), (65, 22, 13))[0]
        kinds = [rng.choice(ISSUES)] if rng.random() < 0.2 else []
        needs = bool(kinds) or outcome != "clear"
        decision_id = f"dec_{n:020x}"
        template = f"tmpl{n % 10:02d}"
        document = {
            "session_id": f"sess{n:08d}",
            "client_id": f"cli{n:08d}",
            "kind": "outcome",
            "outcome": outcome,
            "session_outcome": outcome,
            "derived_outcome": outcome,
            "needs_review": needs,
            "fingerprint": "f" * 64,
            "supersedes": None,
            "decided_at": decided_at.isoformat(),
            "trigger": f"evt{n}",
            "decided_by": None,
            "decision_id": decision_id,
            "template_id": template,
            "status": "complete",
            "reasons": [f"{k}: session says clear, its checks say rejected" for k in kinds]
            or [f"session and checks agree: {outcome}"],
            "discrepancies": [{"issue": k, "detail": "...", "check_id": None} for k in kinds],
            "checks": [
                {
                    "check_id": f"chk{n}",
                    "type": "document_check",
                    "status": "complete",
                    "outcome": outcome,
                    "findings": [],
                }
            ],
        }
        rows.append(
            {
                "decision_id": decision_id,
                "session_id": f"sess{n:08d}",
                "client_id": f"cli{n:08d}",
                "kind": "outcome",
                "outcome": outcome,
                "needs_review": needs,
                "fingerprint": "f" * 64,
                "supersedes": None,
                "trigger": f"evt{n}",
                "document": document,
                "decided_at": decided_at,
                "template_id": template,
                "decided_by": None,
                "note": None,
                "superseded_by": None,
                "review": "open" if needs else None,
            }
        )
        issues += [{"decision_id": decision_id, "issue": k, "decided_at": decided_at} for k in kinds]
    # A person decided over one in eight of those that need one (older ones more than recent).
    for row in [r for r in rows[: count * 3 // 4] if r["review"] == "open" and rng.random() < 0.125]:
        manual_id = "dec_m" + row["decision_id"][5:]
        row.update(review="reviewed", superseded_by=manual_id)
        rows.append(
            {
                **row,
                "decision_id": manual_id,
                "kind": "manual",
                "outcome": "clear",
                "needs_review": False,
                "supersedes": row["decision_id"],
                "superseded_by": None,
                "review": None,
                "decided_by": "ada",
                "note": "checked",
                "decided_at": row["decided_at"] + timedelta(hours=2),
            }
        )
    return rows, issues


def load(url: str, count: int) -> str:
    """Fill the trail; returns the session whose page is measured (a full story)."""
    engine = create_engine(url)
    rows, issues = decision_rows(count, random.Random(7))
    with engine.begin() as tx:
        for start in range(0, len(rows), 5000):
            tx.execute(insert(decisions), rows[start : start + 5000])
        for start in range(0, len(issues), 5000):
            tx.execute(insert(decision_issues), issues[start : start + 5000])
        story = rows[count // 2]
        sid, at = story["session_id"], story["decided_at"]
        for n in range(6):
            tx.execute(
                insert(events).values(
                    event_id=f"evt-story-{n}",
                    event_type="workflow.session.completed",
                    resource_type="session",
                    resource_id=sid,
                    session_id=sid,
                    disposition="accepted",
                    event_time=None,
                    recorded_at=at,
                )
            )
        for n in range(3):
            tx.execute(
                insert(snapshots).values(
                    session_id=sid,
                    client_id="cli",
                    fingerprint="f" * 64,
                    trigger=f"evt-story-{n}",
                    session={"id": sid, "status": "complete", "outcome": "clear"},
                    checks={f"chk{i}": {"id": f"chk{i}"} for i in range(3)},
                    fetched_at=at,
                )
            )
        for action in ("onboarding", "alert"):
            decision_id = story["decision_id"]
            tx.execute(
                insert(action_ledger).values(
                    decision_id=decision_id,
                    session_id=sid,
                    action=action,
                    state="sent",
                    attempts=2,
                    created_at=at,
                    updated_at=at,
                    sent_at=at,
                )
            )
            for attempt in (1, 2):
                tx.execute(
                    insert(action_attempts).values(
                        decision_id=decision_id,
                        session_id=sid,
                        action=action,
                        attempt=attempt,
                        ok=attempt == 2,
                        detail="target answered 200",
                        started_at=at,
                        finished_at=at,
                    )
                )
        tx.execute(text("ANALYZE"))
    engine.dispose()
    return sid


def plans(console: Console, cursor: tuple[datetime, str]) -> None:
    cases = {
        "queue, first page (open)": QueueFilter(),
        "queue, a deep page (open, by cursor)": None,
        "queue, open and reviewed": QueueFilter(reviewed=Reviewed.ALL),
        "queue, rejected": QueueFilter(outcome="rejected"),
        "queue, a template": QueueFilter(template="tmpl03"),
        "queue, a discrepancy kind": QueueFilter(discrepancy="check_missing"),
        "queue, a date range": QueueFilter(
            since=datetime(2026, 10, 1, tzinfo=UTC), until=datetime(2026, 10, 8, tzinfo=UTC)
        ),
    }
    with console.audit.engine.connect() as connection:
        for name, flt in cases.items():
            query = queue_query(flt or QueueFilter(), cursor if flt is None else None, 50)
            compiled = query.compile(dialect=connection.dialect)
            plan = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}", compiled.params)
            lines = [row[0] for row in plan]
            print(f"\n-- {name}")
            print("\n".join(lines))
            assert not any("Seq Scan" in line for line in lines), f"{name}: a sequential scan"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


async def measure(console_app: App, bare: App, cookie: bytes, paths: dict[str, str], requests: int) -> None:
    headers = [(b"cookie", cookie), (b"host", b"127.0.0.1")]
    results: dict[str, list[float]] = {name: [] for name in ("bare page", *paths)}
    for name, path in paths.items():  # warm up: connections, templates, plans
        status, _ = await call(console_app, path, headers)
        assert status == 200, (name, status)
    for _ in range(requests):  # interleaved, so that noise on the machine touches every page alike
        results["bare page"].append((await call(bare, "/", headers))[1])
        for name, path in paths.items():
            results[name].append((await call(console_app, path, headers))[1])
    base = percentiles(results["bare page"])
    print(f"\n{'page':<34} {'p50 ms':>8} {'p99 ms':>8} {'p50 x bare':>11} {'p99 x bare':>11}")
    for name, samples in results.items():
        p50, p99 = percentiles(samples)
        print(f"{name:<34} {p50:>8.2f} {p99:>8.2f} {p50 / base[0]:>11.1f} {p99 / base[1]:>11.1f}")
    queue_p99 = percentiles(results["queue, first page"])[1]
    verdict = "under" if queue_p99 < 100 else "OVER"
    print(f"\nqueue page p99 {queue_p99:.1f} ms: {verdict} the 100 ms target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    name = f"cubehook_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    redis = EmbeddedRedis()
    redis.start()
    try:
        settings = Settings(database_url=f"{POSTGRES}/{name}", redis_url=redis.url, log_level="WARNING")
        options = ConsoleSettings(secret_key=secrets.token_hex(32))
        console = Console.build(settings, options, {})  # migrates the empty database
        started = time.perf_counter()
        sid = load(settings.database_url, args.decisions)
        took = time.perf_counter() - started
        print(f"loaded {args.decisions:,} decisions (and the reviews over some) in {took:.0f} s")
        UserStore(console.audit.engine).add("bench", Role.REVIEWER, "a password for the bench")
        cookie = f"cubehook_console={console.auth.signer.dumps({'u': 'bench', 'c': 'token'})}".encode()
        with console.audit.engine.connect() as connection:
            deep = connection.execute(
                text(
                    "select decided_at, decision_id from decisions where review = 'open' "
                    "order by decided_at desc, decision_id desc offset :deep limit 1"
                ),
                {"deep": args.decisions // 5},
            ).one()
        cursor = (deep.decided_at, deep.decision_id)
        paths = {
            "queue, first page": "/queue",
            "queue, deep page (cursor)": f"/queue?after={encode_cursor(*cursor)}",
            "queue, rejected": "/queue?outcome=rejected",
            "queue, discrepancy": "/queue?discrepancy=check_missing",
            "queue, all, a template": "/queue?reviewed=all&template=tmpl03",
            f"session page ({sid})": f"/sessions/{sid}",
        }

        async def bare_page(request: Request) -> HTMLResponse:
            return HTMLResponse("<!doctype html><title>bare</title><p>a constant page</p>")

        bare = Starlette(routes=[Route("/", bare_page)])
        asyncio.run(measure(create_console_app(console), bare, cookie, paths, args.requests))
        plans(console, cursor)
        console.audit.engine.dispose()
        console.redis.close()
    finally:
        redis.close()
        with admin.connect() as connection:
            connection.execute(text(f'drop database "{name}" with (force)'))
        admin.dispose()


if __name__ == "__main__":
    main()
