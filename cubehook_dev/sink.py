"""A local stand-in for the systems cubehook's actions reach (`cubehook sink`): for `make run`'s
demo. It takes decision webhooks (checking their Standard Webhooks signature as a receiver
should) and Slack-style alerts. What it accepts, the demo tells, after the decision that caused
it (the action's line: "webhook target answered 200"); the sink itself prints only what it
refuses or drops, which would otherwise go unseen."""

from __future__ import annotations

import json

import click
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service import standard_webhooks


def create_sink_app(secret: str) -> Starlette:
    seen: set[str] = set()
    received: list[object] = []  # what it took, for GET /received (tests, the curious)

    async def decision(request: Request) -> JSONResponse:
        body = await request.body()
        headers = request.headers
        ok = standard_webhooks.verify(
            secret,
            headers.get("webhook-id", ""),
            headers.get("webhook-timestamp", ""),
            body,
            headers.get("webhook-signature", ""),
        )
        if not ok:
            click.echo("sink: decision webhook with a bad signature, refused")
            return JSONResponse({"error": "bad signature"}, status_code=401)
        message_id = headers["webhook-id"]
        if message_id in seen:
            click.echo(f"sink: decision {message_id} again, dropped as a copy")
            return JSONResponse({"status": "duplicate"})
        seen.add(message_id)
        received.append(json.loads(body))
        return JSONResponse({"status": "received"})

    async def alert(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({"status": "received"})

    async def listing(request: Request) -> JSONResponse:
        return JSONResponse(received)

    return Starlette(
        routes=[
            Route("/decisions", decision, methods=["POST"]),
            Route("/alerts", alert, methods=["POST"]),
            Route("/received", listing, methods=["GET"]),
        ]
    )
