"""Build, sign and post one webhook event: what `cubehook send-event` does. For operators testing
a deployment and for the README's walkthrough."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

import httpx2

from service.events import format_time, resource_prefix
from service.signature import HEADER, sign


def build_event(
    *,
    session_id: str,
    event_type: str = "workflow.session.completed",
    resource_type: str | None = None,
    outcome: str | None = None,
    event_id: str | None = None,
) -> bytes:
    """An Event document shaped like ComplyCube's, for a workflow session (or any resource).
    ``resource_type`` defaults to the start of the type that names a resource (``workflow.session``
    of ``workflow.session.completed``); "" leaves it out, as ComplyCube may."""
    payload: dict[str, str] = {"id": session_id}
    prefix = resource_prefix(event_type)
    if prefix is not None and event_type[len(prefix) :].startswith(".completed"):
        payload["status"] = "complete"
    if outcome:
        payload["outcome"] = outcome
    now = format_time(datetime.now(UTC))
    document: dict[str, object] = {"id": event_id or secrets.token_hex(12), "type": event_type}
    resource_type = prefix if resource_type is None else resource_type
    if resource_type:
        document["resourceType"] = resource_type
    document |= {"payload": payload | {"createdAt": now, "updatedAt": now}, "createdAt": now}
    return json.dumps(document, separators=(",", ":")).encode()


def send(url: str, body: bytes, secret: str, timeout: float = 15.0) -> httpx2.Response:
    """POST ``body`` exactly as given, signed as ComplyCube signs."""
    headers = {"Content-Type": "application/json", HEADER: sign(body, secret.encode())}
    return httpx2.post(url, content=body, headers=headers, timeout=timeout)
