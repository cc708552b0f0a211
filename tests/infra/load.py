"""The load: sessions started at a steady pace in the simulator, which plays them and delivers
their signed webhooks to the web process through three subscriptions (each event three times, each
copy on ComplyCube's own retry schedule); and the action target, which records when each decision
webhook came."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.conftest import SIM_API_KEY, Receiver

# The preset each session plays, in turn, and the decision it must get.
PRESETS = {"clear": "clear", "rejected": "rejected", "attention": "attention"}


class TimedReceiver(Receiver):
    """tests.conftest's Receiver, answering 200 at once, and noting when each request came."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def app(self) -> ASGIApp:
        async def anything(request: Request) -> JSONResponse:
            body = await request.body()
            self.requests.append((request.url.path, dict(request.headers), body))
            self.times.append(time.time())
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/{path:path}", anything, methods=["POST"])])

    def webhook_ids(self) -> list[str]:
        return [headers.get("webhook-id", "") for _, headers, _ in self.requests]


def subscribe(sim_url: str, webhook_url: str, copies: int) -> list[str]:
    """``copies`` more subscriptions of ``webhook_url`` at the simulator; their secrets."""
    secrets = []
    for _ in range(copies):
        created = httpx2.post(
            f"{sim_url}/v1/webhooks",
            json={"url": webhook_url},
            headers={"Authorization": SIM_API_KEY},
            timeout=5,
        )
        created.raise_for_status()
        secrets.append(str(created.json()["secret"]))
    return secrets


@dataclass
class Load:
    """``sessions`` sessions started evenly over ``seconds`` from ``start()``, presets in turn."""

    sim_url: str
    sessions: int
    seconds: float
    expected: dict[str, str] = field(default_factory=dict)  # session id -> its decision's outcome
    errors: list[str] = field(default_factory=list)
    started_at: float = 0.0
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load")
        self._thread.start()

    def _run(self) -> None:
        presets = list(PRESETS)
        pace = self.seconds / self.sessions
        with httpx2.Client(timeout=10) as client:
            for n in range(self.sessions):
                time.sleep(max(0.0, self.started_at + n * pace - time.monotonic()))
                preset = presets[n % len(presets)]
                try:
                    created = client.post(f"{self.sim_url}/_sim/sessions", json={"preset": preset})
                    created.raise_for_status()
                except httpx2.HTTPError as exc:
                    self.errors.append(f"session {n} not started: {exc!r}")
                    continue
                self.expected[str(created.json()["sessionId"])] = PRESETS[preset]

    def at(self, offset: float) -> None:
        """Sleep until ``offset`` seconds after the load started."""
        time.sleep(max(0.0, self.started_at + offset - time.monotonic()))

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
