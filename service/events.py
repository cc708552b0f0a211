"""The webhook envelope, the resource table and lenient time parsing. Pure: no I/O.

ComplyCube POSTs an Event: ``id`` (stable across redeliveries), ``type``, ``resourceType``,
``payload`` (a summary of the resource, not the resource) and ``createdAt``
(https://docs.complycube.com/api-reference/other-resources/webhooks#the-event-object).

What is confirmed and what is inferred:
- confirmed (ComplyCube's API reference and SDKs): the envelope's fields; ``check.*`` event names
  in two naming generations (``check.completed.clear``, ``check.complete.clear``,
  ``check.updated``...) with ``resourceType`` ``check``;
- inferred: the workflow-session events. ComplyCube's own pages seen so far do not list them;
  two catalogues copying its API reference (an event-hooks library's ComplyCube provider, a
  "ComplyCube-compatible" event catalogue) give ``workflow.session.started|processing|completed|
  cancelled|abandoned|updated``; this project first guessed ``workflowSession.*``. The
  ``resourceType`` they carry is documented nowhere (``workflowSession``? ``workflow.session``?
  ``session``? none?).

So an event is read as leniently as cubehook can afford (``read_event``): what it needs is a JSON
object with a string ``id`` and ``type`` and, for an event about a session or a check, ``payload.id``,
a ComplyCube id (service.ids: it goes into the path of a request made with the API key).
``resourceType`` and ``createdAt`` are optional, and every other field is allowed and ignored: the
job carries identifiers only, and the worker fetches the resource from the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.ids import SHAPE, is_complycube_id

MAX_ID = 256  # event ids and types longer than this are not ComplyCube's
MAX_TIME = 64
# C0 controls and DEL: in no id or type of ComplyCube's, and a NUL is no PostgreSQL string (the
# event's id and type go on the audit trail).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Resource(StrEnum):
    """What an event is about, in cubehook's own words: the name jobs and the audit trail carry."""

    SESSION = "session"  # a workflow session: processed
    CHECK = "check"  # a check: processes the session it belongs to
    OTHER = "other"  # anything else: acknowledged (200 ignored), recorded, counted by type


# Normalised name (lower-case; "_", "-" and "." dropped) -> Resource. One table, read for
# ``resourceType`` and for the type's prefix. An unknown or unrelated name is Resource.OTHER: it
# must never make ComplyCube retry (and, after the 10th failed retry, disable the webhook).
RESOURCES: dict[str, Resource] = {
    # Confirmed: check.* in both naming generations. A re-validated check re-processes its session.
    "check": Resource.CHECK,
    # Inferred: workflowSession, workflow.session, workflow_session, workflow-session, any case.
    "workflowsession": Resource.SESSION,
    # Inferred: a bare "session" resourceType (or type prefix), should ComplyCube shorten it.
    "session": Resource.SESSION,
}
_DROPPED = str.maketrans("", "", "_-.")


def normalise_resource(name: str) -> str:
    """A resource name as the table compares it: workflowSession, workflow.session,
    workflow_session, workflow-session and WORKFLOW.SESSION are all ``workflowsession``."""
    return name.lower().translate(_DROPPED)


def resource_prefix(event_type: str) -> str | None:
    """The longest start of ``event_type``, ending at a ".", that names a known resource, as
    written (``workflow.session`` of ``workflow.session.completed``); None when there is none."""
    parts = event_type.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if normalise_resource(prefix) in RESOURCES:
            return prefix
    return None


def resource_of(resource_type: object, event_type: str) -> Resource:
    """The resource an event is about: its ``resourceType`` when that is a known one, else the
    longest known prefix of its type, else Resource.OTHER."""
    return _resource_of(resource_type if isinstance(resource_type, str) else None, event_type)


@lru_cache(maxsize=256)  # a handful of names arrive over and over: work each pair out once
def _resource_of(resource_type: str | None, event_type: str) -> Resource:
    if resource_type is not None:
        known = RESOURCES.get(normalise_resource(resource_type))
        if known is not None:
            return known
    prefix = resource_prefix(event_type)
    return Resource.OTHER if prefix is None else RESOURCES[normalise_resource(prefix)]


class _Envelope(BaseModel):
    """The envelope as received. Only ``id`` and ``type`` are required of every event; the rest is
    read leniently by ``read_event`` (a field of an unexpected shape counts as absent)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=MAX_ID)
    type: str = Field(min_length=1, max_length=MAX_ID)
    resourceType: Any = None  # ComplyCube's field names, as sent
    payload: Any = None
    createdAt: Any = None


class Event(NamedTuple):
    """A readable event, in cubehook's terms. (A NamedTuple: immutable, and built in a fifth of the
    time a frozen dataclass takes, once per request.)"""

    id: str
    type: str
    resource: Resource
    resource_id: str  # payload.id; "" for an event cubehook does not act on that has none
    # As sent, "" when absent: ComplyCube's own examples carry impossible times (14:06:91.913Z), so
    # parse_time() reads it leniently where a datetime is needed.
    created_at: str


class Flaw(StrEnum):
    """Why a correctly signed body could not be read: the coarse class counted in the metrics."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELDS = "missing_fields"  # a field cubehook needs is absent
    INVALID_FIELDS = "invalid_fields"  # a field cubehook needs has the wrong type or size


@dataclass(frozen=True, slots=True)
class Unreadable:
    flaw: Flaw
    detail: str  # field locations and messages: never any of the input


def read_event(body: bytes) -> Event | Unreadable:
    """Read a webhook body: an Event, or why it cannot be one."""
    try:
        envelope = _Envelope.model_validate_json(body)
    except ValidationError as exc:
        return _unreadable(exc)
    if _CONTROL.search(envelope.id) or _CONTROL.search(envelope.type):
        return Unreadable(Flaw.INVALID_FIELDS, "id, type: a control character (NUL, newline, ...) in either")
    resource = resource_of(envelope.resourceType, envelope.type)
    payload = envelope.payload
    resource_id = payload.get("id") if isinstance(payload, dict) else None
    if resource is not Resource.OTHER and not is_complycube_id(resource_id):
        flaw = Flaw.MISSING_FIELDS if resource_id is None else Flaw.INVALID_FIELDS
        return Unreadable(flaw, f"payload.id: a {resource} event needs it, a ComplyCube id ({SHAPE})")
    if not (isinstance(resource_id, str) and 0 < len(resource_id) <= MAX_ID) or _CONTROL.search(resource_id):
        resource_id = ""  # an ignored event's: only recorded
    created_at = envelope.createdAt
    if not (isinstance(created_at, str) and len(created_at) <= MAX_TIME) or _CONTROL.search(created_at):
        created_at = ""
    return Event(envelope.id, envelope.type, resource, resource_id, created_at)


def _unreadable(exc: ValidationError) -> Unreadable:
    """A short, safe description: field locations and messages, never the offending input."""
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]["type"]
    if first == "json_invalid":
        flaw = Flaw.NOT_JSON
    elif first == "model_type":
        flaw = Flaw.NOT_OBJECT
    elif any(err["type"] == "missing" for err in errors):
        flaw = Flaw.MISSING_FIELDS
    else:
        flaw = Flaw.INVALID_FIELDS
    parts = [f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in errors[:5]]
    return Unreadable(flaw, "; ".join(parts))


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
    return {"event_id": event.id, "event_type": event.type, "resource_id": event.resource_id}
