"""`send-event`'s event builder: the likeliest real spelling by default, any other on request."""

import json

import pytest

from cubehook_dev.sender import build_event
from service.events import Event, Resource, read_event


@pytest.mark.parametrize(
    ("event_type", "resource_type", "sent_resource_type", "resource"),
    [
        ("workflow.session.completed", None, "workflow.session", Resource.SESSION),
        ("workflowSession.completed", None, "workflowSession", Resource.SESSION),
        ("workflow.session.updated", "", None, Resource.SESSION),
        ("check.completed.clear", None, "check", Resource.CHECK),
        ("client.created", None, None, Resource.OTHER),
        ("workflow.session.completed", "session", "session", Resource.SESSION),
    ],
)
def test_built_events_read_as_what_they_are(
    event_type: str, resource_type: str | None, sent_resource_type: str | None, resource: Resource
) -> None:
    body = build_event(session_id="s1", event_type=event_type, resource_type=resource_type, event_id="e1")
    assert json.loads(body).get("resourceType") == sent_resource_type
    event = read_event(body)
    assert isinstance(event, Event)
    assert (event.id, event.type, event.resource, event.resource_id) == ("e1", event_type, resource, "s1")


def test_the_default_is_a_completed_session() -> None:
    document = json.loads(build_event(session_id="s1", outcome="clear"))
    assert (document["type"], document["resourceType"]) == ("workflow.session.completed", "workflow.session")
    assert (document["payload"]["status"], document["payload"]["outcome"]) == ("complete", "clear")
