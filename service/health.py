"""Liveness and readiness probes."""

from __future__ import annotations

from redis import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse


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
