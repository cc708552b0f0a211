"""The webhook envelope and the routing table. Pure: no I/O.

ComplyCube POSTs an Event: ``id`` (stable across redeliveries), ``type``, ``resourceType``,
``payload`` (a summary of the resource, not the resource) and ``createdAt``
(https://docs.complycube.com/api-reference/other-resources/webhooks#the-event-object). The models
accept fields they do not know, because ComplyCube adds fields without notice, and keep the
payload as it came.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import MalformedEvent

_ID = Field(min_length=1, max_length=256)


class EventPayload(BaseModel):
    """The summary of the resource the event is about. Only ``id`` is required."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = _ID


class Event(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    id: str = _ID
    type: str = Field(min_length=1, max_length=256)
    resource_type: str = Field(alias="resourceType", min_length=1, max_length=256)
    payload: EventPayload
    # Kept as sent: ComplyCube's own examples carry impossible times (14:06:91.913Z). parse_time()
    # reads it leniently where a datetime is needed.
    created_at: str = Field(alias="createdAt", min_length=1, max_length=64)


class Route(StrEnum):
    """What the endpoint does with an event of a given resource."""

    ENQUEUE = "enqueue"  # processed by the workers
    IGNORE = "ignore"  # acknowledged (200) and recorded, not processed


# Routed by resource, not by exact event name: workflow-session event names are not documented,
# and an unknown name must never make ComplyCube retry (and, after 10 failures, disable the
# webhook). Keys are compared lower-cased without "_", so workflowSession and workflow_session match.
ROUTES: dict[str, Route] = {
    "workflowsession": Route.ENQUEUE,
    # check.* in both naming generations (check.completed.clear, check.complete.clear,
    # check.updated...): a re-validated check re-processes the session it belongs to.
    "check": Route.ENQUEUE,
}


def normalise_resource(name: str) -> str:
    """A resource name as the routing table and the workers compare it: workflow_session and
    workflowSession are the same."""
    return name.lower().replace("_", "")


def route(event: Event) -> Route:
    """The route for an event's ``resourceType``, else for its type's prefix, else IGNORE."""
    prefix = event.type.split(".", 1)[0]
    return (
        ROUTES.get(normalise_resource(event.resource_type))
        or ROUTES.get(normalise_resource(prefix))
        or Route.IGNORE
    )


def parse_event(body: bytes) -> Event:
    """Parse a webhook body; raise MalformedEvent with a short reason when it is not an Event."""
    try:
        return Event.model_validate_json(body)
    except ValidationError as exc:
        raise MalformedEvent(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """A short, safe description: field locations and messages, never the offending input."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_time(value: str) -> datetime | None:
    """Read an ISO-8601 time leniently; None when it cannot be read at all.

    Out-of-range seconds (``14:06:91.913Z``, seen in ComplyCube's docs) are carried into the minute.
    """
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        parsed = _parse_overflowing_seconds(text)
    if parsed is None or parsed.tzinfo:
        return parsed
    return parsed.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """A time as ComplyCube writes it: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_overflowing_seconds(text: str) -> datetime | None:
    head, sep, rest = text.partition("T")
    if not sep or len(rest) < 8 or rest[2] != ":" or rest[5] != ":":
        return None
    seconds = rest[6:8]
    if not seconds.isdigit():
        return None
    try:
        base = datetime.fromisoformat(f"{head}T{rest[:6]}00{rest[8:]}")
    except ValueError:
        return None
    return base + timedelta(seconds=int(seconds))


def summary(event: Event) -> dict[str, Any]:
    """The fields of an event that are safe to log: identifiers and types, no payload."""
    return {"event_id": event.id, "event_type": event.type, "resource_id": event.payload.id}
