import json
from datetime import UTC, datetime
from typing import Any

import pytest

from service.events import (
    Event,
    Flaw,
    Resource,
    Unreadable,
    parse_time,
    read_event,
    resource_of,
    resource_prefix,
    summary,
)
from service.ids import SHAPE
from tests.conftest import event_body, fixture_bytes


def readable(body: bytes) -> Event:
    event = read_event(body)
    assert isinstance(event, Event), event
    return event


def unreadable(body: bytes) -> Unreadable:
    flaw = read_event(body)
    assert isinstance(flaw, Unreadable), flaw
    return flaw


def document(**fields: Any) -> bytes:
    """An event document with exactly these top-level fields (None: left out)."""
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


def test_fixture_event_reads_with_identifiers() -> None:
    event = readable(fixture_bytes("event-workflow-session-completed.json"))
    assert event == Event(
        id="68a0c2f1e4b0a1000812ab34",
        type="workflowSession.completed",
        resource=Resource.SESSION,
        resource_id="5eb2b61e02df0a0008f1cf2a",
        created_at="2025-01-13T11:39:30.500Z",
    )


def test_unknown_fields_are_allowed() -> None:
    doc = json.loads(event_body())
    doc["newTopLevelField"] = {"a": 1}
    doc["payload"]["someNewField"] = "x"
    assert readable(json.dumps(doc).encode()).resource_id == "5eb2b61e02df0a0008f1cf2a"


SESSION_SPELLINGS = ["workflowSession", "workflow.session", "workflow_session", "workflow-session",
                     "WORKFLOW.SESSION", "WorkflowSession", "Workflow-Session"]  # fmt: skip
NAMES = ["started", "processing", "completed", "cancelled", "abandoned", "updated", "somethingNew"]


@pytest.mark.parametrize("spelling", SESSION_SPELLINGS)
@pytest.mark.parametrize("name", NAMES)
def test_session_events_in_every_spelling_with_or_without_resource_type(spelling: str, name: str) -> None:
    event_type = f"{spelling}.{name}"
    for resource_type in (spelling, "session", "Session", None, "", 42, "somethingElse"):
        assert resource_of(resource_type, event_type) is Resource.SESSION, (resource_type, event_type)
    assert resource_prefix(event_type) == spelling


@pytest.mark.parametrize("spelling", SESSION_SPELLINGS)
def test_a_session_resource_type_wins_over_an_unknown_type(spelling: str) -> None:
    assert resource_of(spelling, "mystery.event") is Resource.SESSION


@pytest.mark.parametrize(
    ("event_type", "resource_type", "expected"),
    [
        ("check.completed", "check", Resource.CHECK),
        ("check.completed.rejected", "check", Resource.CHECK),
        ("check.completed.match_confirmed", None, Resource.CHECK),
        ("check.complete.clear", "check", Resource.CHECK),  # the older generation
        ("check.failed", None, Resource.CHECK),
        ("check.updated", "CHECK", Resource.CHECK),
        ("workflow.session.completed", "check", Resource.CHECK),  # resourceType, when known, decides
        ("checkout.completed", None, Resource.OTHER),  # prefixes end at a "."
        ("workflow.completed", None, Resource.OTHER),
        ("flow.session.completed", None, Resource.OTHER),  # a prefix starts at the start
        ("client.created", "client", Resource.OTHER),
        ("document.updated", "document", Resource.OTHER),
        ("totally.unknown", "mystery", Resource.OTHER),
    ],
)
def test_routing_is_by_resource(event_type: str, resource_type: str | None, expected: Resource) -> None:
    assert resource_of(resource_type, event_type) is expected
    body = document(id="e1", type=event_type, resourceType=resource_type, payload={"id": "r1"})
    assert readable(body).resource is expected


def test_resource_type_and_created_at_are_optional() -> None:
    event = readable(document(id="e1", type="workflow.session.completed", payload={"id": "s1"}))
    assert event == Event("e1", "workflow.session.completed", Resource.SESSION, "s1", "")


@pytest.mark.parametrize("odd", [42, None, {"a": 1}, ["x"], "t" * 65])
def test_odd_resource_type_or_time_counts_as_absent(odd: Any) -> None:
    event = readable(
        document(id="e1", type="check.completed", resourceType=odd, payload={"id": "c1"}, createdAt=odd)
    )
    assert (event.resource, event.resource_id, event.created_at) == (Resource.CHECK, "c1", "")


def test_an_event_cubehook_does_not_act_on_needs_only_id_and_type() -> None:
    payloads: list[Any] = [None, [], {"id": 7}, {"other": "x"}]
    for payload in payloads:
        event = readable(document(id="e1", type="client.created", payload=payload))
        assert (event.resource, event.resource_id) == (Resource.OTHER, "")


@pytest.mark.parametrize("missing", ["id", "type"])
def test_id_and_type_are_required(missing: str) -> None:
    doc = json.loads(event_body())
    del doc[missing]
    flaw = unreadable(json.dumps(doc).encode())
    assert flaw.flaw is Flaw.MISSING_FIELDS
    assert f"{missing}: Field required" in flaw.detail


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, Flaw.MISSING_FIELDS),
        ({}, Flaw.MISSING_FIELDS),
        ([], Flaw.MISSING_FIELDS),
        ({"id": None}, Flaw.MISSING_FIELDS),
        ({"id": 12}, Flaw.INVALID_FIELDS),
        ({"id": ""}, Flaw.INVALID_FIELDS),
        ({"id": "s" * 65}, Flaw.INVALID_FIELDS),
        # Not ComplyCube ids: each would leave its path segment, or break the request (service.ids).
        ({"id": "../clients/cl1"}, Flaw.INVALID_FIELDS),
        ({"id": "x?pageSize=1&clientId=zzz"}, Flaw.INVALID_FIELDS),
        ({"id": "cl1\u0000"}, Flaw.INVALID_FIELDS),
        ({"id": "cl%2F1"}, Flaw.INVALID_FIELDS),
        ({"id": "5eb2b61e02df0a0008f1cf2a\n"}, Flaw.INVALID_FIELDS),
    ],
)
@pytest.mark.parametrize("event_type", ["workflow.session.completed", "check.completed"])
def test_a_session_or_check_event_needs_the_payload_id(payload: Any, expected: Flaw, event_type: str) -> None:
    flaw = unreadable(document(id="e1", type=event_type, payload=payload))
    assert flaw.flaw is expected
    kind = "check" if event_type.startswith("check") else "session"
    assert flaw.detail == f"payload.id: a {kind} event needs it, a ComplyCube id ({SHAPE})"  # never the id


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", Flaw.NOT_JSON),
        (b"not json", Flaw.NOT_JSON),
        (b"\xff\xfe\xfd", Flaw.NOT_JSON),
        (b"\xef\xbb\xbf{}", Flaw.NOT_JSON),
        (b'{"id": "\xff\xfe", "type": "x"}', Flaw.NOT_JSON),
        (b"[" * 10_000 + b"]" * 10_000, Flaw.NOT_JSON),
        (b"[1, 2, 3]", Flaw.NOT_OBJECT),
        (b'"a string"', Flaw.NOT_OBJECT),
        (b"null", Flaw.NOT_OBJECT),
        (b"{}", Flaw.MISSING_FIELDS),
        (b'{"id": 123, "type": "x"}', Flaw.INVALID_FIELDS),
        (b'{"id": "", "type": "x"}', Flaw.INVALID_FIELDS),
        (b'{"id": "a", "type": ""}', Flaw.INVALID_FIELDS),
    ],
)
def test_what_cannot_be_read_says_why(body: bytes, expected: Flaw) -> None:
    flaw = unreadable(body)
    assert flaw.flaw is expected
    assert 0 < len(flaw.detail) < 600


def test_the_description_never_echoes_the_input() -> None:
    flaw = unreadable(b'{"id": "a", "type": 42, "payload": {"id": "John Doe"}, "createdAt": 7}')
    assert "type" in flaw.detail
    assert "42" not in flaw.detail
    assert "John" not in unreadable(b'{"id": "John Doe", "type": "check.x", "payload": {"id": 5}}').detail


def test_summary_holds_identifiers_only() -> None:
    event = readable(event_body(entityName="John Doe", email="john@example.com"))
    assert summary(event) == {
        "event_id": "68a0c2f1e4b0a1000812ab34",
        "event_type": "workflowSession.completed",
        "resource_id": "5eb2b61e02df0a0008f1cf2a",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-13T11:39:30.500Z", datetime(2025, 1, 13, 11, 39, 30, 500000, tzinfo=UTC)),
        ("2025-01-13T11:39:30", datetime(2025, 1, 13, 11, 39, 30, tzinfo=UTC)),
        ("2025-01-13T14:06:91.913Z", datetime(2025, 1, 13, 14, 7, 31, 913000, tzinfo=UTC)),
        ("yesterday", None),
        ("2025-01-13Tab:cd:ef", None),
    ],
)
def test_parse_time_is_lenient(text: str, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_format_time_writes_complycubes_form_and_reads_back() -> None:
    from datetime import timedelta, timezone

    from service.events import format_time

    moment = datetime(2025, 1, 13, 12, 39, 30, 500000, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2025-01-13T11:39:30.500Z"
    assert parse_time(format_time(moment)) == moment


@pytest.mark.parametrize(
    ("resource_id", "created_at"),
    [("s", "2025-01-13T11:39:30.500Z"), ("s" * 64, "t" * 64), ("5eb2b61e02df0a0008f1cf2a", ""),
     ("Az09_-", "")],
)  # fmt: skip
def test_the_limits_are_inclusive(resource_id: str, created_at: str) -> None:
    event = readable(
        document(id="e1", type="check.completed", payload={"id": resource_id}, createdAt=created_at)
    )
    assert (event.resource_id, event.created_at) == (resource_id, created_at)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json", "body: Invalid JSON: "),  # pydantic's own words follow
        (b"{}", "id: Field required; type: Field required"),
        (b'{"id": 1, "type": 2}', "id: Input should be a valid string; type: Input should be a valid string"),
    ],
)
def test_the_description_names_each_field_and_says_why(body: bytes, detail: str) -> None:
    """Each problem as "where: why", the document itself being "body", problems apart by "; "."""
    assert unreadable(body).detail.startswith(detail)


# Resource names, each spelled by hand (not read from the table): every key of the table is here,
# so one deleted or pointed at another resource fails a row.
@pytest.mark.parametrize(
    ("resource_type", "expected"),
    [
        ("check", Resource.CHECK), ("Check", Resource.CHECK), ("CHECK", Resource.CHECK),
        ("workflowSession", Resource.SESSION), ("workflow_session", Resource.SESSION),
        ("session", Resource.SESSION), ("SESSION", Resource.SESSION), ("Session", Resource.SESSION),
        ("workflow", Resource.OTHER), ("checks", Resource.OTHER), ("sessions", Resource.OTHER),
        ("client", Resource.OTHER), ("workflowsessioncheck", Resource.OTHER), ("", Resource.OTHER),
    ],
)  # fmt: skip
def test_each_resource_name(resource_type: str, expected: Resource) -> None:
    assert resource_of(resource_type, "x.y") is expected  # the type names nothing: resourceType decides
    assert resource_of(None, f"{resource_type}.updated") is expected  # and as a type's prefix


@pytest.mark.parametrize(
    ("event_type", "prefix"),
    [
        ("session.completed", "session"),
        ("check", "check"),  # a whole type can be the prefix
        ("workflow.session.check.completed", "workflow.session"),  # the longest known start
        ("check.session.completed", "check"),
        ("client.created", None),
        ("", None),
    ],
)
def test_the_prefix_is_the_longest_known_start_of_the_type(event_type: str, prefix: str | None) -> None:
    assert resource_prefix(event_type) == prefix


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-13T14:06:75", datetime(2025, 1, 13, 14, 7, 15, tzinfo=UTC)),  # the shortest that overflows
        ("2025-01-13T23:59:60Z", datetime(2025, 1, 14, 0, 0, 0, tzinfo=UTC)),  # a leap second
        ("  2025-01-13T11:39:30.500+01:00 ", datetime(2025, 1, 13, 10, 39, 30, 500000, tzinfo=UTC)),
        ("2025-01-13T14:06:91+02:00", datetime(2025, 1, 13, 12, 7, 31, tzinfo=UTC)),
        ("2025-01-13", datetime(2025, 1, 13, tzinfo=UTC)),
        ("2025-01-13T1", None),  # too short to hold seconds
        ("2025-01-13T", None),
        ("2025-01-13T14:06", datetime(2025, 1, 13, 14, 6, tzinfo=UTC)),
        ("2025-01-13T14:06:9", None),
        ("2025-01-13T14-23:99", None),  # not hh:mm:ss: no seconds to carry
        ("2025-01-13T14:0619:9", None),
        ("2025-01-13T14:06:9x", None),
        ("2025-13-13T14:06:91Z", None),  # out-of-range seconds on an impossible date
        ("", None),
    ],
)
def test_parse_time_carries_only_seconds(text: str, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_format_time_writes_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from service.events import format_time

    monkeypatch.setenv("TZ", "EST+05")
    time.tzset()
    try:
        assert format_time(datetime(2025, 1, 13, 11, 39, 30, tzinfo=UTC)) == "2025-01-13T11:39:30.000Z"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("event_id", "event_type"),
    [("evt\x00nul", "check.completed"), ("evt-1", "check.completed\x00"), ("evt\n1", "check.completed"),
     ("evt-1", "client.created\x7f")],
)  # fmt: skip
def test_an_event_id_or_type_with_a_control_character_is_unreadable(event_id: str, event_type: str) -> None:
    # Never ComplyCube's, and a NUL is no PostgreSQL string: the audit trail could not record it.
    flaw = unreadable(document(id=event_id, type=event_type, payload={"id": "5eb2b61e02df0a0008f1cf2a"}))
    assert (flaw.flaw, flaw.detail) == (
        Flaw.INVALID_FIELDS,
        "id, type: a control character (NUL, newline, ...) in either",
    )


def test_what_is_only_recorded_loses_its_control_characters() -> None:
    event = readable(
        document(id="evt-1", type="client.created", payload={"id": "cl\x001"}, createdAt="2025\x00")
    )
    assert (event.resource, event.resource_id, event.created_at) == (Resource.OTHER, "", "")
