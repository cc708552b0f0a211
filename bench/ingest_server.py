"""The server the ingest benchmark loads: cubehook's public app on its real listener configuration
(limits included), plus two baselines on the same process and event loop: ``/bench/onekey`` writes
one Redis key (with redis-py's asyncio client, the cheapest honest way), ``/bench/noop`` answers at
once."""

from __future__ import annotations

import argparse
import itertools

import redis.asyncio as aioredis
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.log import configure_logging
from service.settings import Settings
from service.web.app import create_apps
from service.web.serve import configs
from workers.scriptload import load_at


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--min-replicas", default="auto", help="CUBEHOOK_REDIS_MIN_REPLICAS")
    args = parser.parse_args()
    # As in production: INFO lines, as JSON (the benchmark sends them to /dev/null).
    settings = Settings(
        redis_url=args.redis_url, webhook_secrets=args.secret, log_format="json", port=args.port,
        admin_port=0, redis_min_replicas=args.min_replicas,
    )  # fmt: skip
    configure_logging(settings)
    # What a worker's first tick does: the web only runs the intake's scripts (workers.scriptload).
    load_at(args.redis_url)
    apps = create_apps(settings)
    app = apps.public
    client = aioredis.Redis.from_url(args.redis_url)
    counter = itertools.count()

    async def onekey(request: Request) -> JSONResponse:
        await request.body()
        await client.set(f"bench:onekey:{next(counter)}", b"1", ex=600)
        return JSONResponse({"status": "accepted"}, status_code=202)

    async def noop(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"status": "accepted"}, status_code=202)

    app.router.routes.extend(
        [Route("/bench/onekey", onekey, methods=["POST"]), Route("/bench/noop", noop, methods=["POST"])]
    )
    # The public listener exactly as `cubehook web` configures it (its limits included).
    (config,) = configs(settings, apps)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
