"""The two web applications of `cubehook web`, on two listeners of one process.

- ``create_app(settings)``: the public app, what ComplyCube reaches: ``POST /webhooks/complycube``
  and ``/healthz``, nothing else. It owns the Redis clients (closed by its lifespan).
- ``create_admin_app(settings, redis)``: the operators' app, never exposed to the internet:
  ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``. It reads Redis through the public
  app's blocking client, in threads, so a scrape never touches the intake's asyncio connections.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

from prometheus_client import CollectorRegistry
from redis import Redis
from starlette.applications import Starlette
from starlette.routing import Route

from service.intake import Intake
from service.metrics import QueueCollector
from service.redis import async_redis_client, redis_client
from service.settings import Settings
from service.web.health import healthz, metrics, openapi, readyz
from service.web.webhooks import receive_complycube


class Apps(NamedTuple):
    public: Starlette
    admin: Starlette


def create_app(settings: Settings) -> Starlette:
    """The public application. Raises ConfigError when no webhook secret is configured."""
    redis = redis_client(settings)  # connects lazily; blocking: RQ's job template, the admin app
    aredis = async_redis_client(settings)  # the request path's client
    # No secret, no start (ConfigError). Its scripts are the workers' to load (service.evalsha).
    intake = Intake.build(settings, redis, aredis, loads_scripts=False)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Everything loaded at start-up (modules, models, routes) lives as long as the process:
        # moved out of the collector's reach, a full collection no longer walks all of it. That
        # walk was the p99 of the intake under load (40 ms, against 9 ms without it).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await aredis.aclose()
            redis.close()

    app = Starlette(
        routes=[
            Route("/webhooks/complycube", receive_complycube, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.redis = redis
    app.state.intake = intake
    return app


def create_admin_app(settings: Settings, redis: Redis) -> Starlette:
    """The admin application, reading Redis through ``redis`` (a blocking client) in threads."""
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ]
    )
    app.state.redis = redis
    # Per app, so that tests may build several; the process-wide counters live in metrics.WEB.
    app.state.metrics_registry = CollectorRegistry()
    app.state.metrics_registry.register(
        QueueCollector(redis, settings.queue_name, settings.quarantine_retention_seconds)
    )
    return app


def create_apps(settings: Settings) -> Apps:
    """Both applications, the admin one on the public one's Redis client."""
    public = create_app(settings)
    return Apps(public, create_admin_app(settings, public.state.redis))
