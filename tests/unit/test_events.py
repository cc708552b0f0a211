import json
from datetime import UTC, datetime

import pytest

from service.errors import MalformedEvent
from service.events import Route, parse_event, parse_time, route, summary
from tests.conftest import event_body, fixture_bytes


def test_fixture_event_parses_with_identifiers() -> None:
    event = parse_event(fixture_bytes("event-workflow-session-completed.json"))
    assert event.id == "68a0c2f1e4b0a1000812ab34"
    assert event.type == "workflowSession.completed"
    assert event.resource_type == "workflowSession"
    assert event.payload.id == "5eb2b61e02df0a0008f1cf2a"
    assert event.created_at == "2025-01-13T11:39:30.500Z"


def test_unknown_fields_are_kept_not_rejected() -> None:
    document = json.loads(event_body())
    document["newTopLevelField"] = {"a": 1}
    document["payload"]["someNewField"] = "x"
    event = parse_event(json.dumps(document).encode())
    assert event.model_extra == {"newTopLevelField": {"a": 1}}
    assert event.payload.model_extra is not None
    assert event.payload.model_extra["someNewField"] == "x"
    assert event.payload.model_extra["outcome"] == "clear"


@pytest.mark.parametrize(
    ("event_type", "resource_type", "expected"),
    [
        ("workflowSession.completed", "workflowSession", Route.ENQUEUE),
        ("workflowSession.completed.clear", "workflowSession", Route.ENQUEUE),
        ("workflowSession.started", "workflowSession", Route.ENQUEUE),
        ("workflowSession.somethingNew", "workflowSession", Route.ENQUEUE),
        ("workflow_session.completed", "workflow_session", Route.ENQUEUE),
        ("workflowSession.completed", "somethingElse", Route.ENQUEUE),
        ("check.completed", "check", Route.ENQUEUE),
        ("check.completed.rejected", "check", Route.ENQUEUE),
        ("check.complete.clear", "check", Route.ENQUEUE),
        ("check.failed", "check", Route.ENQUEUE),
        ("client.created", "client", Route.IGNORE),
        ("document.updated", "document", Route.IGNORE),
        ("totally.unknown", "mystery", Route.IGNORE),
    ],
)
def test_routing_is_by_resource(event_type: str, resource_type: str, expected: Route) -> None:
    event = parse_event(event_body(event_type=event_type, resource_type=resource_type))
    assert route(event) is expected


def _without(path: str) -> bytes:
    document = json.loads(event_body())
    if "." in path:
        outer, inner = path.split(".")
        del document[outer][inner]
    else:
        del document[path]
    return json.dumps(document).encode()


@pytest.mark.parametrize("missing", ["id", "type", "resourceType", "payload", "createdAt", "payload.id"])
def test_each_required_field_is_required(missing: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(_without(missing))
    assert f"{missing}: Field required" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2, 3]",
        b'"a string"',
        b"null",
        b"\xff\xfe\xfd",
        b'{"id": "\xff\xfe", "type": "x", "resourceType": "y", "payload": {"id": "1"}, "createdAt": "t"}',
        b'{"id": 123, "type": "x", "resourceType": "y", "payload": {"id": "1"}, "createdAt": "t"}',
        b'{"id": "", "type": "x", "resourceType": "y", "payload": {"id": "1"}, "createdAt": "t"}',
        b'{"id": "a", "type": "x", "resourceType": "y", "payload": [], "createdAt": "t"}',
        b"[" * 10_000 + b"]" * 10_000,
    ],
)
def test_what_is_not_an_event_object_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(body)
    assert len(str(caught.value)) < 600


def test_error_description_never_echoes_the_input() -> None:
    body = b'{"id": "a", "type": 42, "resourceType": "y", "payload": {"id": "John Doe"}, "createdAt": 7}'
    with pytest.raises(MalformedEvent) as caught:
        parse_event(body)
    assert "type" in str(caught.value)
    assert "42" not in str(caught.value)


def test_summary_holds_identifiers_only() -> None:
    event = parse_event(event_body(entityName="John Doe", email="john@example.com"))
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
