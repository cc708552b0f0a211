"""Liveness and readiness probes, the Prometheus metrics and the OpenAPI document: the admin
listener's routes (the public one has /healthz alone beside the webhook)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.metrics import WEB

OPENAPI = Path(__file__).with_name("openapi.json")


async def openapi(_request: Request) -> Response:
    """The OpenAPI document of this HTTP API (service/web/openapi.json)."""
    return Response(OPENAPI.read_bytes(), media_type="application/json")


async def healthz(_request: Request) -> JSONResponse:
    """The process is alive and serving."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when Redis answers: without it no event can be accepted (the endpoint would 503)."""
    redis: Redis = request.app.state.redis
    try:
        await run_in_threadpool(redis.ping)
    except RedisError as exc:
        return JSONResponse({"status": "unavailable", "redis": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    """Prometheus text: what this process counted (the web's registry alone: a worker's series
    would read 0 here for ever), and the queue as Redis holds it now."""
    registry: CollectorRegistry = request.app.state.metrics_registry

    def render() -> bytes:
        return bytes(generate_latest(WEB)) + bytes(generate_latest(registry))

    return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)
