"""Shared fixtures. The suite starts its own private Redis server on a free port (never the
machine's 6379) and stops it at the end; each test starts with an empty database."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import structlog
import uvicorn
from redis import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp

from cubehook_dev.devredis import EmbeddedRedis, free_port
from cubehook_dev.simulator.app import SimConfig, Simulator, create_simulator_app
from cubehook_dev.simulator.faults import FaultConfig
from service.log import configure_logging
from service.settings import ENV_FILE_VARIABLE, Settings
from service.signature import sign
from workers.scriptload import IntakeScripts, load_at
from workers.seal import DecisionSeal

ROOT = Path(__file__).resolve().parent.parent
# No env file: a var/dev.env that `make run` left in the checkout must not reach the tests' commands
# (in this process and the ones they start). The quick-start test sets its own folder.
os.environ[ENV_FILE_VARIABLE] = ""
# Sample ComplyCube payloads rebuilt from the public API reference; tests read them, never edit them.
FIXTURES = ROOT / "tests" / "fixtures"
SECRET = "whsec_test_primary"
# The decisions' seal (workers/seal.py): what the workers and the console hold, never the web.
DECISION_KEY = "test-decision-key-0123456789abcdef0123456789"
SEAL = DecisionSeal((DECISION_KEY.encode(),))
OTHER_SECRET = "whsec_test_rotated"


OUR_PACKAGES = ("service", "workers", "cubehook_cli", "cubehook_console", "cubehook_dev")
LAZY_LOGGER = type(structlog.get_logger())  # what a module's get_logger() gives, until its first line


@pytest.fixture(autouse=True)
def _loggers_lazy_again() -> Iterator[None]:
    """After each test, every module's logger assembles itself again at its next line: a command run
    in a test (CliRunner) configures structlog as a process does, caching each logger at its first
    line, which would pin the loggers later tests use to that command's stream, out of their capture."""
    yield
    for name, module in list(sys.modules.items()):
        if name.split(".", 1)[0] in OUR_PACKAGES:
            proxy = getattr(module, "log", None)
            if isinstance(proxy, LAZY_LOGGER) and "bind" in vars(proxy):
                del proxy.bind  # the class's: assembles from the configuration of the moment


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 another process holds (listening), for the one line a taken port gets."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    client = Redis.from_url(redis_server.url)
    client.flushall()
    load_at(redis_server.url)  # what a worker does as it starts: the web only runs them, by SHA
    client.close()
    return redis_server.url


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def make_settings(redis_url: str) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url, "webhook_secrets": SECRET, "decision_keys": DECISION_KEY, "log_format": "json",
        }  # fmt: skip
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def log_output(settings: Settings) -> io.StringIO:
    """Everything logged during the test, as JSON lines."""
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    return stream


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signature(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"ComplyCube-Signature": sign(body, secret.encode())}


def event_body(
    event_id: str = "68a0c2f1e4b0a1000812ab34",
    event_type: str = "workflowSession.completed",
    resource_type: str = "workflowSession",
    session_id: str = "5eb2b61e02df0a0008f1cf2a",
    **payload: Any,
) -> bytes:
    document = json.loads(fixture_bytes("event-workflow-session-completed.json"))
    document.update(id=event_id, type=event_type, resourceType=resource_type)
    document["payload"].update(id=session_id, **payload)
    return json.dumps(document).encode()


SIM_API_KEY = "test_jobs_key"


@dataclass
class SimServer:
    url: str
    simulator: Simulator

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx2.request(method, self.url + path, timeout=10, **kwargs)
        assert response.is_success, response.text
        return response.json()

    def create(self, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", "/_sim/sessions", json=spec)
        return result

    def session(self, session_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.control(
            "GET", f"/v1/workflowSessions/{session_id}", headers={"Authorization": SIM_API_KEY}
        )
        return doc

    def faults(self, **config: Any) -> None:
        self.control("PUT", "/_sim/faults", json=config)


def received(sock: socket.socket, timeout: float = 10.0, pause: float = 1.0) -> bytes:
    """What a server sends on ``sock`` until it closes the connection (``<closed>`` appended, or
    ``<reset>``), or until nothing comes for ``timeout`` seconds (``pause`` once something has)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data
        except ConnectionResetError:
            return data + b"<reset>"
        if not chunk:
            return data + b"<closed>"
        data += chunk
        sock.settimeout(pause)


@contextmanager
def serving(app: ASGIApp) -> Iterator[int]:
    """Serve ``app`` with uvicorn in a thread on a free port for the block; yield the port."""
    port = free_port()
    with serving_config(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)):
        yield port


@contextmanager
def serving_config(config: uvicorn.Config) -> Iterator[None]:
    """Serve with uvicorn, as ``config`` says, in a thread for the block."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """The ComplyCube simulator as a real HTTP server, without a webhook subscription."""
    app = create_simulator_app(SimConfig(api_key=SIM_API_KEY, faults=FaultConfig(seed=1)))
    with serving(app) as port:
        yield SimServer(f"http://127.0.0.1:{port}", app.state.simulator)


class Receiver:
    """A real HTTP server standing in for an action's target: records every request, answers with
    ``status`` (after ``delay`` seconds)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.delay = 0.0
        self.url = ""

    def app(self) -> ASGIApp:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def anything(request: Request) -> JSONResponse:
            self.requests.append((request.url.path, dict(request.headers), await request.body()))
            if self.delay:
                import asyncio

                await asyncio.sleep(self.delay)
            return JSONResponse({"ok": self.status < 300}, status_code=self.status)

        return Starlette(routes=[Route("/{path:path}", anything, methods=["POST"])])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver()
    with serving(target.app()) as port:
        target.url = f"http://127.0.0.1:{port}"
        yield target


@contextmanager
def repeating(step: Callable[[], object], every: float, join_timeout: float = 20) -> Iterator[None]:
    """``step`` in a thread of its own, every ``every`` seconds (after the previous one), while the
    block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            step()
            stop.wait(every)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=join_timeout)


@contextmanager
def keeping_intake_scripts(url: str, every: float = 0.2) -> Iterator[None]:
    """What the workers' watch does on each tick while the block runs, for tests of the web alone:
    load the intake's scripts into the Redis at ``url`` whenever it lacks them (after a restart)."""
    redis = Redis.from_url(url, socket_timeout=1)
    scripts = IntakeScripts(redis, Settings(redis_url=url))

    def tick() -> None:
        with contextlib.suppress(RedisError):  # away: as a worker, try again on the next tick
            scripts.ensure()

    try:
        with repeating(tick, every):
            yield
    finally:
        redis.close()
