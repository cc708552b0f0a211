"""The console's pages with 100,000 decisions in PostgreSQL, measured server-side.

Loads 100,000 decisions (bench/console_data.py: a realistic mix) into a throwaway PostgreSQL
database at 127.0.0.1:5432 through the migrations, logs in through the console's own form (the
session it starts in Redis is the one the cookie names), then calls the console's ASGI app directly
(no sockets, no client: only the server's work is timed, the login check and the database reads
included) for the review queue's first page, a deep page (by its cursor), filtered pages and a
session's page, against a bare Starlette page returning a constant HTML body, in the same run. Every
answer must be a 200 (a 303 to the login would time the wrong page). Prints p50/p99, the ratio to
the bare page, and the EXPLAIN (ANALYZE) plans of the queue's queries (a sequential scan fails it).

Target (docs/console.md): the queue page under 100 ms at p99, through indexed queries only.
Run: ``.venv/bin/python bench/console.py [--decisions N] [--requests N] [--database sqlite] [--smoke]``.
``--smoke``: 100 decisions, 20 requests a page, only to prove the benchmark still runs (its plans
are then checked with sequential scans disabled: a few rows fit one page, which PostgreSQL rightly
scans; what is asked is whether an index can serve each query). ``--database sqlite``: a SQLite
file instead (no plans checked), for a machine without PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx2
from console_data import load  # bench/, on the path when run as a script
from simulator_get import _call as call_app
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from cubehook_console.app import create_console_app
from cubehook_console.auth import COOKIE
from cubehook_console.queries import QueueFilter, Reviewed, encode_cursor, queue_query
from cubehook_console.settings import ConsoleSettings
from cubehook_console.state import Console
from cubehook_console.users import Role, UserStore
from cubehook_dev.devredis import EmbeddedRedis
from service.settings import Settings
from workers.audit.schema import decisions

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
USER, PASSWORD = "bench", "a password for the bench"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def call(app: App, path: str, headers: list[tuple[bytes, bytes]], name: str) -> float:
    """One GET, straight into the ASGI app (as bench/simulator_get.py calls one); how long the app
    took (s). Anything but a 200 ends the benchmark: it would time another page than ``name``."""
    started = time.perf_counter()
    status = await call_app(app, path, headers)
    took = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"{name} ({path}) answered {status}, not 200")
    return took


async def log_in(app: Starlette) -> bytes:
    """Log in as a person does (the login page for its CSRF token, then the form): the console
    starts a session in Redis and names it in the cookie. Returns the ``Cookie`` header's value."""
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        page = await client.get("/login")
        token = CSRF.search(page.text)
        if page.status_code != 200 or token is None:
            raise SystemExit(f"the login page answered {page.status_code} without a CSRF token")
        form = {"name": USER, "password": PASSWORD, "csrf": token.group(1)}
        answer = await client.post("/login", data=form)
        cookie = client.cookies.get(COOKIE)
        if answer.status_code != 303 or not cookie:
            raise SystemExit(f"the login answered {answer.status_code}, not 303 with a session cookie")
    return f"{COOKIE}={cookie}".encode()


@contextmanager
def database(kind: str, server: str) -> Iterator[str]:
    """A throwaway database's URL for the block: a new PostgreSQL database on ``server`` (dropped
    afterwards), or a SQLite file in a temporary folder."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/audit.db"
        return
    admin = create_engine(
        f"{server}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"cubehook_bench_{secrets.token_hex(4)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'create database "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        raise SystemExit(
            f"PostgreSQL is not reachable at {server} ({type(exc.orig).__name__}): "
            "start it, or run with --database sqlite"
        ) from None
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'drop database "{name}" with (force)'))
        admin.dispose()


def plans(console: Console, cursor: tuple[datetime, str], smoke: bool) -> None:
    if console.audit.engine.dialect.name != "postgresql":
        print("\nplans: not checked (EXPLAIN ANALYZE and the index-only proof are PostgreSQL's)")
        return
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
        if smoke:  # a few rows fit one page, which PostgreSQL rightly scans: can an index serve it?
            connection.exec_driver_sql("set enable_seqscan = off")
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


async def measure(console_app: Starlette, bare: App, paths: dict[str, str], requests: int) -> None:
    cookie = await log_in(console_app)
    headers = [(b"cookie", cookie), (b"host", b"127.0.0.1")]
    results: dict[str, list[float]] = {name: [] for name in ("bare page", *paths)}
    for name, path in paths.items():  # warm up: connections, templates, plans
        await call(console_app, path, headers, name)
    for _ in range(requests):  # interleaved, so that noise on the machine touches every page alike
        results["bare page"].append(await call(bare, "/", headers, "bare page"))
        for name, path in paths.items():
            results[name].append(await call(console_app, path, headers, name))
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
    parser.add_argument("--decisions", type=int, default=None, help="[100,000; 100 with --smoke]")
    parser.add_argument("--requests", type=int, default=None, help="a page [300; 20 with --smoke]")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres", default=POSTGRES, help="the server, without a database name")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    count = args.decisions or (100 if args.smoke else 100_000)
    requests = args.requests or (20 if args.smoke else 300)
    with database(args.database, args.postgres) as url, EmbeddedRedis() as redis:
        settings = Settings(
            database_url=url, redis_url=redis.url, log_level="WARNING", decision_keys=secrets.token_hex(32)
        )
        options = ConsoleSettings(secret_key=secrets.token_hex(32))
        console = Console.build(settings, options, {})  # migrates the empty database
        started = time.perf_counter()
        sid = load(settings.database_url, count)
        took = time.perf_counter() - started
        print(f"loaded {count:,} decisions (and the reviews over some) into {args.database} in {took:.0f} s")
        UserStore(console.audit.engine).add(USER, Role.REVIEWER, PASSWORD)
        with console.audit.engine.connect() as connection:
            newest_first = (decisions.c.decided_at.desc(), decisions.c.decision_id.desc())
            deep = connection.execute(
                select(decisions.c.decided_at, decisions.c.decision_id)
                .where(decisions.c.review == "open")
                .order_by(*newest_first)
                .limit(1)
                .offset(count // 5)
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
        try:
            asyncio.run(measure(create_console_app(console), bare, paths, requests))
            plans(console, cursor, args.smoke)
        finally:
            console.audit.engine.dispose()
            console.redis.close()


if __name__ == "__main__":
    main()
