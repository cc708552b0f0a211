"""How much work the simulator does per GET, with 100,000 sessions loaded.

Calls the ASGI apps directly (no sockets, no client) so only the server's own work is timed:
``GET /v1/workflowSessions/{id}`` and ``GET /v1/checks/{id}`` on the simulator, against a
baseline Starlette route that returns a constant JSON body, measured in the same run.
Also reports the memory the 100,000 sessions take. Run: ``.venv/bin/python bench/simulator_get.py``;
``--smoke``: 1,000 sessions and 1,000 requests, only to prove it still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cubehook_dev.simulator.app import SimConfig, create_simulator_app
from cubehook_dev.simulator.scenarios import Preset, ScenarioSpec, resolve

SESSIONS = 100_000
REQUESTS = 20_000
SMOKE_SESSIONS, SMOKE_REQUESTS = 1_000, 1_000
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def _call(app: App, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    path, _, query = path.partition("?")
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "headers": headers, "http_version": "1.1", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": "",
             "app": app}  # fmt: skip
    await app(scope, receive, send)
    return status


async def _per_request(
    app: App, paths: list[str], headers: list[tuple[bytes, bytes]], requests: int
) -> float:
    for path in paths[:500]:  # warm up
        status = await _call(app, path, headers)
        if status != 200:
            raise SystemExit(f"{path} answered {status}, not 200")
    start = time.perf_counter()
    for path in itertools.islice(itertools.cycle(paths), requests):
        await _call(app, path, headers)
    return (time.perf_counter() - start) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    sessions, requests = (SMOKE_SESSIONS, SMOKE_REQUESTS) if args.smoke else (SESSIONS, REQUESTS)
    config = SimConfig()
    app = create_simulator_app(config)
    world = app.state.simulator.world
    tracemalloc.start()
    plans = [resolve(ScenarioSpec(preset=p)) for p in (Preset.CLEAR, Preset.ATTENTION, Preset.REJECTED)]
    now = time.time()
    for i in range(sessions):
        session, _ = world.create_session(plans[i % 3], "John", "Doe", "tmpl", now)
        world.settle(session, now)
    memory_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()

    async def constant(_request: Request) -> JSONResponse:
        return JSONResponse({"id": "x", "status": "ok"})

    baseline = Starlette(routes=[Route("/constant", constant)])
    auth = [(b"authorization", config.api_key.encode())]
    session_paths = [f"/v1/workflowSessions/{sid}" for sid in list(world.sessions)[::97]]
    check_paths = [f"/v1/checks/{cid}" for cid in list(world.checks)[::97]]
    base = asyncio.run(_per_request(baseline, ["/constant"], [], requests))
    get_session = asyncio.run(_per_request(app, session_paths, auth, requests))
    get_check = asyncio.run(_per_request(app, check_paths, auth, requests))
    print(f"sessions loaded:          {sessions:,} ({memory_mb:.0f} MB traced)")
    print(f"baseline constant route:  {base * 1e6:7.1f} us/request")
    for name, cost in (("GET workflowSession", get_session), ("GET check", get_check)):
        print(f"{name + ':':<26}{cost * 1e6:7.1f} us/request  ratio {cost / base:.2f}x baseline")


if __name__ == "__main__":
    main()
