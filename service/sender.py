"""Build, sign and post one webhook event: what `cubehook send-event` does. For operators testing
a deployment and for the README's walkthrough."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

import httpx2

from service.events import format_time
from service.signature import HEADER, sign


def build_event(
    *,
    session_id: str,
    event_type: str = "workflowSession.completed",
    outcome: str | None = None,
    event_id: str | None = None,
) -> bytes:
    """An Event document shaped like ComplyCube's, for a workflow session (or any resource)."""
    payload: dict[str, str] = {"id": session_id}
    if event_type.startswith("workflowSession.completed"):
        payload["status"] = "complete"
    if outcome:
        payload["outcome"] = outcome
    now = format_time(datetime.now(UTC))
    document = {
        "id": event_id or secrets.token_hex(12),
        "type": event_type,
        "resourceType": event_type.split(".", 1)[0],
        "payload": payload | {"createdAt": now, "updatedAt": now},
        "createdAt": now,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def send(url: str, body: bytes, secret: str, timeout: float = 15.0) -> httpx2.Response:
    """POST ``body`` exactly as given, signed as ComplyCube signs."""
    headers = {"Content-Type": "application/json", HEADER: sign(body, secret.encode())}
    return httpx2.post(url, content=body, headers=headers, timeout=timeout)
