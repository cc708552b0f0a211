"""A local stand-in for the systems cubehook's actions reach (`cubehook sink`): for `make run`'s
demo. It takes decision webhooks (checking their Standard Webhooks signature as a receiver
should) and Slack-style alerts, and prints one line for each."""

from __future__ import annotations

import json

import click
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workers import standard_webhooks


def create_sink_app(secret: str) -> Starlette:
    seen: set[str] = set()

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
        doc = json.loads(body)
        click.echo(
            f"sink: decision {doc['decision_id']} for session {doc['session_id']}: {doc['outcome']}"
            f"{' (needs review)' if doc['needs_review'] else ''}, signature verified"
        )
        return JSONResponse({"status": "received"})

    async def alert(request: Request) -> JSONResponse:
        payload = await request.json()
        click.echo(f"sink: compliance alert: {payload.get('text')}")
        return JSONResponse({"status": "received"})

    return Starlette(
        routes=[Route("/decisions", decision, methods=["POST"]), Route("/alerts", alert, methods=["POST"])]
    )
