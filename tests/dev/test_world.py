"""The simulator's resources, rendered and validated by the models the worker uses."""

import itertools
import json

import pytest

from cubehook_dev.simulator.scenarios import Preset, ScenarioSpec, resolve
from cubehook_dev.simulator.world import SessionEventStyle, SessionRecord, World, iso
from service.complycube_models import Check, Client, Page, WorkflowSession
from service.events import Event, Resource, read_event

T0 = 1_736_768_120.592  # 2025-01-13T11:35:20.592Z


def played(world: World, preset: Preset, now: float = T0) -> tuple[SessionRecord, list[dict[str, object]]]:
    session, events = world.create_session(resolve(ScenarioSpec(preset=preset)), "John", "Doe", "tmpl", now)
    return session, events + world.settle(session, now + 60)


def test_iso_matches_complycube_format() -> None:
    assert iso(T0) == "2025-01-13T11:35:20.592Z"


def test_a_played_session_renders_in_complycube_shapes() -> None:
    world = World(seed=1)
    session, _ = played(world, Preset.REJECTED)
    parsed = WorkflowSession.model_validate_json(json.dumps(world.render_session(session)))
    assert (parsed.status, parsed.outcome) == ("complete", "rejected")
    assert [c.type for c in parsed.all_related_checks] == [
        "document_check",
        "identity_check",
        "extensive_screening_check",
    ]
    checks = [
        Check.model_validate(world.render_check(world.checks[c.check_id])) for c in parsed.all_related_checks
    ]
    assert [(c.status, c.result and c.result.outcome) for c in checks] == [
        ("complete", "rejected"),
        ("complete", "clear"),
        ("complete", "clear"),
    ]
    assert checks[0].result is not None
    assert checks[0].result.breakdown
    client = Client.model_validate(world.render_client(world.clients[session.client_id]))
    assert client.person_details is not None
    assert client.person_details.last_name == "Doe"


def test_events_follow_the_session_and_parse_as_webhooks() -> None:
    world = World(seed=1)
    session, events = played(world, Preset.CLEAR)
    types = [e["type"] for e in events]
    assert types == ["workflow.session.started", "workflow.session.processing"] + ["check.completed"] * 3 + [
        "workflow.session.completed"
    ]
    assert {e["resourceType"] for e in events} == {"workflow.session", "check"}
    last = read_event(json.dumps(events[-1]).encode())
    assert isinstance(last, Event)
    assert (last.resource, last.resource_id) == (Resource.SESSION, session.id)
    assert events[-1]["payload"]["outcome"] == "clear"  # type: ignore[index]
    assert "entityName" not in events[-1]["payload"]  # type: ignore[operator]
    assert len({e["id"] for e in events}) == len(events)


def test_pending_check_stays_pending_after_completion() -> None:
    world = World(seed=1)
    session, events = played(world, Preset.PENDING_CHECK)
    statuses = [world.checks[c].status for c in session.check_ids]
    assert statuses == ["complete", "pending", "complete"]
    assert "result" not in world.render_check(world.checks[session.check_ids[1]])
    assert session.status == "complete"
    assert sum(e["type"] == "check.completed" for e in events) == 2


@pytest.mark.parametrize("preset", [Preset.ABANDONED, Preset.CANCELLED])
def test_terminal_sessions_without_outcome(preset: Preset) -> None:
    world = World(seed=1)
    session, events = played(world, preset)
    rendered = world.render_session(session)
    assert rendered["status"] == preset.value
    assert "outcome" not in rendered
    assert events[-1]["type"] == f"workflow.session.{preset.value}"


@pytest.mark.parametrize(
    ("style", "completed", "resource_type"),
    [
        (SessionEventStyle.DOTTED, "workflow.session.completed", "workflow.session"),
        (SessionEventStyle.DOTTED_BARE, "workflow.session.completed", None),
        (SessionEventStyle.CAMEL, "workflowSession.completed", "workflowSession"),
    ],
)
def test_session_event_styles(style: SessionEventStyle, completed: str, resource_type: str | None) -> None:
    world = World(seed=1, session_events=style)
    _session, events = played(world, Preset.CLEAR)
    last = events[-1]
    assert last["type"] == completed
    assert last.get("resourceType") == resource_type
    assert [e.get("resourceType") for e in events if e["type"] == "check.completed"] == ["check"] * 3
    for event in events:
        read = read_event(json.dumps(event).encode())
        assert isinstance(read, Event)
        assert read.resource in (Resource.SESSION, Resource.CHECK)


def test_revalidated_check_changes_and_reports() -> None:
    world = World(seed=1)
    session, _ = played(world, Preset.CLEAR)
    check = world.checks[session.check_ids[0]]
    event = world.set_check_outcome(check, "rejected", T0 + 120)
    assert event["type"] == "check.completed"
    assert world.render_check(check)["result"]["outcome"] == "rejected"


def test_same_seed_same_ids() -> None:
    assert [World(seed=3).new_id() for _ in range(3)] == [World(seed=3).new_id() for _ in range(3)]
    a = World(seed=3)
    assert len({a.new_id() for _ in range(1000)}) == 1000


def _world_with(n: int) -> tuple[World, list[SessionRecord]]:
    world = World(seed=2)
    presets = itertools.cycle([Preset.CLEAR, Preset.ATTENTION, Preset.REJECTED])
    sessions = [played(world, next(presets), T0 + i)[0] for i in range(n)]
    return world, sessions


def test_list_is_newest_first_filtered_and_paginated() -> None:
    world, sessions = _world_with(25)
    page = Page[WorkflowSession].model_validate(world.list_sessions({"pageSize": "10", "page": "2"}))
    assert (page.page, page.page_size, page.total_items, page.pages) == (2, 10, 25, 3)
    assert [s.id for s in page.items] == [s.id for s in reversed(sessions)][10:20]
    assert all(not s.all_related_checks for s in page.items)  # summaries carry no checks
    rejected = world.list_sessions({"outcome": "rejected"})
    assert rejected["totalItems"] == 8
    one_client = world.list_sessions({"clientId": sessions[3].client_id})
    assert [s["id"] for s in one_client["items"]] == [sessions[3].id]
    after = world.list_sessions({"createdAfter": iso(T0 + 19.5)})
    assert after["totalItems"] == 5


@pytest.mark.parametrize(
    "query", [{"page": "0"}, {"pageSize": "1001"}, {"pageSize": "x"}, {"updatedAfter": "not-a-time"}]
)
def test_malformed_filters_give_an_empty_page(query: dict[str, str]) -> None:
    world, _ = _world_with(3)
    assert world.list_sessions(query)["items"] == []
    assert world.list_sessions(query)["totalItems"] == 0


def test_holds_a_hundred_thousand_sessions() -> None:
    world = World(seed=4)
    plan = resolve(ScenarioSpec(preset=Preset.CLEAR))
    for i in range(100_000):
        session, _ = world.create_session(plan, "John", "Doe", "tmpl", T0 + i)
        world.settle(session, T0 + i)
    assert len(world.sessions) == 100_000
    assert len(world.checks) == 300_000
    last = world.render_session(session)
    assert WorkflowSession.model_validate(last).outcome == "clear"
    assert world.list_sessions({"pageSize": "1000", "page": "100"})["items"][-1]["createdAt"] == iso(T0)


def test_checks_list_newest_first_by_client_type_status_and_outcome() -> None:
    world, sessions = _world_with(6)
    one = world.list_checks({"clientId": sessions[4].client_id})
    page = Page[Check].model_validate(one)
    assert [c.id for c in page.items] == list(reversed(sessions[4].check_ids))  # newest created first
    assert {c.client_id for c in page.items} == {sessions[4].client_id}
    everyone = world.list_checks({"pageSize": "1000"})
    assert [c["id"] for c in everyone["items"]] == list(reversed(world.checks))
    documents = world.list_checks({"type": "document_check", "status": "complete"})
    assert documents["totalItems"] == 6
    rejected = world.list_checks({"result.outcome": "rejected"})
    assert rejected["totalItems"] == 2  # the two rejected presets' document checks
    assert world.list_checks({"documentId": "any"})["totalItems"] == 0  # no simulated check has one
    assert world.list_checks({"clientId": "nobody"})["items"] == []


def test_checks_list_pages_and_time_filters() -> None:
    world, _ = _world_with(4)  # 12 checks, made (and completed) at T0 + 60 + i for session i
    second = Page[Check].model_validate(world.list_checks({"pageSize": "5", "page": "2"}))
    assert (second.total_items, second.pages) == (12, 3)
    assert [c.id for c in second.items] == list(reversed(world.checks))[5:10]
    assert world.list_checks({"createdAfter": iso(T0 + 61.5)})["totalItems"] == 6
    assert world.list_checks({"updatedBefore": iso(T0 + 61.5)})["totalItems"] == 6


@pytest.mark.parametrize("query", [{"page": "0"}, {"pageSize": "0"}, {"createdBefore": "soon"}])
def test_malformed_check_filters_give_an_empty_page(query: dict[str, str]) -> None:
    world, _ = _world_with(2)
    assert world.list_checks(query) == {"page": 1, "pageSize": 100, "totalItems": 0, "pages": 0, "items": []}
