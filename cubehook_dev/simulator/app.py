"""The simulator over HTTP: ComplyCube's REST endpoints under /v1, and a control API under /_sim.

/v1 answers as ComplyCube does: ``Authorization: <api key>`` (the raw key, no "Bearer"), JSON
bodies, ``{"type", "message"}`` errors (401 ``unauthorized``, 404 ``resource_not_found``, 429
``rate_limit_exceeded``, 500 ``internal_server_error``), with the configured faults injected.
/_sim creates and plays scenarios, changes faults and shows the delivery log; it is not ComplyCube's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import httpx2
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cubehook_dev.simulator.answers import error, not_found, parse
from cubehook_dev.simulator.delivery import Deliverer
from cubehook_dev.simulator.faults import SERVER_ERRORS, Fault, FaultConfig, FaultInjector
from cubehook_dev.simulator.listing import empty_page
from cubehook_dev.simulator.scenarios import ScenarioSpec, resolve
from cubehook_dev.simulator.world import Document, SessionEventStyle, World

Handler = Callable[[Request], Awaitable[Response]]
R = TypeVar("R")


@dataclass(frozen=True)
class SimConfig:
    api_key: str = "test_simulator_key"
    webhook_url: str | None = None  # a subscription to this URL exists from the start
    webhook_secret: str = "simulator_webhook_secret"  # noqa: S105 - a simulator's, for local use
    step_seconds: float = 0.0  # pause between a session's status changes when played
    retry_scale: float = 1.0  # 0.001 turns ComplyCube's 60 s first retry into 60 ms
    delivery_timeout: float = 15.0
    reorder_hold: float = 1.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    session_events: SessionEventStyle = SessionEventStyle.DOTTED  # how session events are spelled


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    enabled: bool | None = None
    events: list[str] | None = None


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1)
    events: list[str] = Field(default_factory=lambda: ["*"])
    enabled: bool = True


class CheckUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1)


class Simulator:
    """The state behind the app: one world, its faults, its deliveries, its playing scenarios."""

    def __init__(self, config: SimConfig, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.world = World(seed=config.faults.seed, session_events=config.session_events)
        self.faults = FaultInjector(config.faults)
        self.deliverer = Deliverer(
            self.world,
            self.faults,
            retry_scale=config.retry_scale,
            timeout=config.delivery_timeout,
            reorder_hold=config.reorder_hold,
            transport=transport,
        )
        self._plays: set[asyncio.Task[None]] = set()
        # Every request to /v1 by route (``GET /v1/checks/{id}``), faulted ones too: what counts
        # against ComplyCube's rate limit, counted where ComplyCube would count it.
        self.calls: Counter[str] = Counter()
        if config.webhook_url:
            self.world.add_webhook(config.webhook_url, config.webhook_secret)

    # --- ComplyCube's API --------------------------------------------------------------------------

    def api(self, handler: Handler) -> Handler:
        """Wrap a /v1 handler: latency, the API key, then the injected fault."""

        async def wrapped(request: Request) -> Response:
            self.calls[_route(request.method, request.url.path)] += 1
            decision = self.faults.for_request(request.method, request.url.path)
            if decision.delay_seconds:
                await asyncio.sleep(decision.delay_seconds)
            if request.headers.get("authorization") != self.config.api_key:
                return error(401, "unauthorized", "Invalid or missing API key")
            if decision.fault is Fault.TIMEOUT:
                return error(504, "gateway_timeout", "Upstream timed out")
            if decision.fault is Fault.TOO_MANY_REQUESTS:
                headers = (
                    {"Retry-After": str(decision.retry_after)} if decision.retry_after is not None else None
                )
                return error(429, "rate_limit_exceeded", "Too many requests", headers)
            if decision.fault is Fault.SERVER_ERROR:
                status = decision.status or 500
                kind, message = SERVER_ERRORS.get(status, ("server_error", "Server error"))
                return error(status, kind, message)
            return await handler(request)

        return wrapped

    def getter(self, kind: str, table: Mapping[str, R], render: Callable[[R], Document]) -> Handler:
        """A ``GET /v1/<resources>/{id}`` handler: the rendered record, or 404."""

        async def get(request: Request) -> Response:
            record = table.get(request.path_params["id"])
            if record is None:
                return not_found(kind, request.path_params["id"])
            return JSONResponse(render(record))

        return get

    async def list_sessions(self, request: Request) -> Response:
        query = self.faults.session_list_query(request.query_params)
        return JSONResponse(empty_page() if query is None else self.world.list_sessions(query))

    async def list_checks(self, request: Request) -> Response:
        return JSONResponse(self.world.list_checks(request.query_params))

    async def list_webhooks(self, request: Request) -> Response:
        items = [self.world.render_webhook(h) for h in self.world.webhooks.values()]
        return JSONResponse(
            {"page": 1, "pageSize": 100, "totalItems": len(items), "pages": 1, "items": items}
        )

    async def create_webhook(self, request: Request) -> Response:
        body = await parse(request, WebhookCreate)
        if isinstance(body, Response):
            return body
        secret = "whsec_" + self.world.new_id()
        hook = self.world.add_webhook(body.url, secret, body.events)
        hook.enabled = body.enabled
        # As at ComplyCube, the secret is shown once, in the answer to the creation.
        return JSONResponse({**self.world.render_webhook(hook), "secret": secret}, status_code=201)

    async def update_webhook(self, request: Request) -> Response:
        hook = self.world.webhooks.get(request.path_params["id"])
        if hook is None:
            return not_found("Webhook", request.path_params["id"])
        body = await parse(request, WebhookUpdate)
        if isinstance(body, Response):
            return body
        hook.url = body.url or hook.url
        hook.events = body.events if body.events is not None else hook.events
        hook.enabled = hook.enabled if body.enabled is None else body.enabled
        return JSONResponse(self.world.render_webhook(hook))

    async def delete_webhook(self, request: Request) -> Response:
        """``DELETE /v1/webhooks/{id}``: gone, and nothing more is sent through it, retries included
        (ComplyCube's reference shows no answer body: 204)."""
        if self.world.remove_webhook(request.path_params["id"]) is None:
            return not_found("Webhook", request.path_params["id"])
        return Response(status_code=204)

    # --- control -------------------------------------------------------------------------------

    async def create_scenario(self, request: Request) -> Response:
        spec = await parse(request, ScenarioSpec)
        if isinstance(spec, Response):
            return spec
        plan = resolve(spec)
        now = time.time()
        session, events = self.world.create_session(
            plan, spec.first_name, spec.last_name, spec.template_id, now
        )
        if spec.mode == "settled":
            self.world.settle(session, now)  # final at once, no webhook: a missed session
        else:
            self.deliverer.publish(events)
        if spec.mode == "play":
            task = asyncio.ensure_future(self._play(session.id))
            self._plays.add(task)
            task.add_done_callback(self._plays.discard)
        return JSONResponse(
            {
                "sessionId": session.id,
                "clientId": session.client_id,
                "finalStatus": plan.final_status,
                "sessionOutcome": plan.session_outcome,
            },
            status_code=201,
        )

    async def _play(self, session_id: str) -> None:
        session = self.world.sessions[session_id]
        while True:
            await asyncio.sleep(self.config.step_seconds)
            events = self.world.advance(session, time.time())
            if not events:
                return
            self.deliverer.publish(events)

    async def advance(self, request: Request) -> Response:
        """Move a session one step (manual mode), sending the webhooks for the change."""
        session = self.world.sessions.get(request.path_params["id"])
        if session is None:
            return not_found("Workflow session", request.path_params["id"])
        events = self.world.advance(session, time.time())
        self.deliverer.publish(events)
        return JSONResponse({"status": session.status, "events": [e["type"] for e in events]})

    async def update_check(self, request: Request) -> Response:
        check = self.world.checks.get(request.path_params["id"])
        if check is None:
            return not_found("Check", request.path_params["id"])
        body = await parse(request, CheckUpdate)
        if isinstance(body, Response):
            return body
        self.deliverer.publish([self.world.set_check_outcome(check, body.outcome, time.time())])
        return JSONResponse(self.world.render_check(check))

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.config.model_dump())

    async def put_faults(self, request: Request) -> Response:
        config = await parse(request, FaultConfig)
        if isinstance(config, Response):
            return config
        self.faults.reconfigure(config)
        return JSONResponse(config.model_dump())

    async def deliveries(self, request: Request) -> Response:
        return JSONResponse(
            [
                {"eventId": r.event_id, "type": r.event_type, "resourceId": r.resource_id,
                 "webhookId": r.webhook_id, "attempt": r.attempt, "outcome": r.outcome, "at": r.at}
                for r in self.deliverer.records
            ]
        )  # fmt: skip

    async def idle(self, request: Request) -> Response:
        """Answers once every played session is final and every delivery is done (or 504)."""
        timeout = float(request.query_params.get("timeout", "60"))
        deadline = time.monotonic() + timeout
        if self._plays:
            await asyncio.wait(list(self._plays), timeout=timeout)
        quiet = not self._plays and await self.deliverer.idle(max(0.0, deadline - time.monotonic()))
        return JSONResponse({"idle": quiet}, status_code=200 if quiet else 504)

    async def call_counts(self, request: Request) -> Response:
        """``{"total": n, "routes": {"GET /v1/checks": n, ...}}``: the /v1 requests so far."""
        return JSONResponse({"total": sum(self.calls.values()), "routes": dict(self.calls)})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "sessions": len(self.world.sessions)})

    async def aclose(self) -> None:
        for task in list(self._plays):
            task.cancel()
        await asyncio.gather(*self._plays, return_exceptions=True)
        await self.deliverer.aclose()


def _route(method: str, path: str) -> str:
    """``GET /v1/checks/{id}`` for ``GET /v1/checks/abc``: the route a request took."""
    parts = path.strip("/").split("/")
    if len(parts) > 2:
        parts[2] = "{id}"
    return f"{method} /{'/'.join(parts)}"


def create_simulator_app(config: SimConfig, transport: httpx2.AsyncBaseTransport | None = None) -> Starlette:
    sim = Simulator(config, transport)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sim.aclose()

    api, world = sim.api, sim.world
    app = Starlette(
        routes=[
            Route("/v1/workflowSessions", api(sim.list_sessions), methods=["GET"]),
            Route(
                "/v1/workflowSessions/{id}",
                api(sim.getter("Workflow session", world.sessions, world.render_session)),
                methods=["GET"],
            ),
            Route("/v1/checks", api(sim.list_checks), methods=["GET"]),
            Route(
                "/v1/checks/{id}", api(sim.getter("Check", world.checks, world.render_check)), methods=["GET"]
            ),
            Route(
                "/v1/clients/{id}",
                api(sim.getter("Client", world.clients, world.render_client)),
                methods=["GET"],
            ),
            Route("/v1/webhooks", api(sim.list_webhooks), methods=["GET"]),
            Route("/v1/webhooks", api(sim.create_webhook), methods=["POST"]),
            Route(
                "/v1/webhooks/{id}",
                api(sim.getter("Webhook", world.webhooks, world.render_webhook)),
                methods=["GET"],
            ),
            Route("/v1/webhooks/{id}", api(sim.update_webhook), methods=["POST"]),
            Route("/v1/webhooks/{id}", api(sim.delete_webhook), methods=["DELETE"]),
            Route("/_sim/sessions", sim.create_scenario, methods=["POST"]),
            Route("/_sim/sessions/{id}/advance", sim.advance, methods=["POST"]),
            Route("/_sim/checks/{id}", sim.update_check, methods=["POST"]),
            Route("/_sim/faults", sim.get_faults, methods=["GET"]),
            Route("/_sim/faults", sim.put_faults, methods=["PUT"]),
            Route("/_sim/deliveries", sim.deliveries, methods=["GET"]),
            Route("/_sim/idle", sim.idle, methods=["GET"]),
            Route("/_sim/calls", sim.call_counts, methods=["GET"]),
            Route("/_sim/health", sim.health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.simulator = sim
    return app
