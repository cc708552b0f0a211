"""Ids that are not ComplyCube ids (service.ids), met by the worker: in a job queued before the
intake quarantined such events, or inside ComplyCube's answers. Never requested, never a path the
API key should not read; on record as unreadable; no job dead-lettered. A real Redis, real RQ, the
audit trail on SQLite and PostgreSQL; ComplyCube is an httpx.MockTransport that records every
request it sees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from redis import Redis
from sqlalchemy import select

from service.events import format_time
from service.settings import Settings
from tests.conftest import FIXTURES
from tests.jobs.conftest import Pipeline
from workers import operations
from workers import runtime as worker_runtime
from workers.audit.schema import events
from workers.judging.judge import Decision
from workers.judging.reconcile import Issue
from workers.runtime import Runtime

SESSION = json.loads((FIXTURES / "workflow-session-complete.json").read_text())
CHECK = json.loads((FIXTURES / "check-document-rejected.json").read_text())
BAD_IDS = ["../clients/cl1", "x?pageSize=1&clientId=zzz", "cl1\x00"]


class ComplyCube:
    """ComplyCube's API as the tests set it: a session, its checks; records each request's path."""

    def __init__(self) -> None:
        self.session: dict[str, Any] = dict(SESSION)
        self.checks: dict[str, dict[str, Any]] = {}
        self.listed: list[dict[str, Any]] = []  # the session list's summaries
        self.webhooks: list[dict[str, Any]] = []
        self.paths: list[bytes] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.paths.append(request.url.raw_path)
        path = request.url.path.removeprefix("/v1/")
        if path == f"workflowSessions/{self.session['id']}":
            return httpx2.Response(200, json=self.session)
        lists = {
            "checks": list(self.checks.values()),
            "workflowSessions": self.listed,
            "webhooks": self.webhooks,
        }
        if path in lists:
            items = lists[path]
            return httpx2.Response(200, json={"page": 1, "pageSize": 1000, "totalItems": len(items),
                                              "pages": 1, "items": items})  # fmt: skip
        if path.startswith("checks/") and path.removeprefix("checks/") in self.checks:
            return httpx2.Response(200, json=self.checks[path.removeprefix("checks/")])
        return httpx2.Response(404, json={"type": "resource_not_found"})


@pytest.fixture
def api() -> ComplyCube:
    return ComplyCube()


@pytest.fixture
def runtime(worker_settings: Settings, database_url: str, api: ComplyCube) -> Iterator[Runtime]:
    settings = worker_settings.model_copy(update={"database_url": database_url})
    built = Runtime.build(settings, {}, transport=httpx2.MockTransport(api))
    worker_runtime.install(built)
    yield built
    worker_runtime.install(None)
    built.close()


def on_record(runtime: Runtime, event_id: str) -> list[tuple[str, str]]:
    with runtime.audit.engine.connect() as connection:
        query = select(events.c.disposition, events.c.resource_id).where(events.c.event_id == event_id)
        return [(row.disposition, row.resource_id) for row in connection.execute(query)]


def assert_nothing_dead(pipeline: Pipeline) -> None:
    assert pipeline.queue.failed_job_registry.get_job_ids() == []


@pytest.mark.parametrize("event_type", ["workflow.session.completed", "check.completed"])
@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_queued_event_whose_id_is_not_a_complycube_id_is_recorded_unreadable(
    pipeline: Pipeline, api: ComplyCube, bad: str, event_type: str
) -> None:
    event_id = pipeline.submit(bad, event_type, event_id="evt-queued-before")  # as an older web side did
    pipeline.work()
    assert api.paths == []  # nothing requested, at any path
    [result] = pipeline.results()
    assert (result["result"], result["reason"]) == (
        "unreadable", "payload.id: not a ComplyCube id (1-64 letters, digits, _ or -); nothing was requested"
    )  # fmt: skip
    # On record, its control characters shown: a NUL is no PostgreSQL string.
    shown = bad.encode("unicode_escape").decode()
    assert on_record(pipeline.runtime, event_id) == [("unreadable", shown)]
    assert_nothing_dead(pipeline)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_checks_client_id_that_is_not_a_complycube_id_is_never_requested(
    pipeline: Pipeline, api: ComplyCube, redis: Redis, bad: str
) -> None:
    api.checks[CHECK["id"]] = {**CHECK, "clientId": bad}
    event_id = pipeline.submit(CHECK["id"], "check.completed")  # a check no session indexed yet
    pipeline.work()
    assert api.paths == [f"/v1/checks/{CHECK['id']}".encode()]  # the check; not its client's sessions
    [result] = pipeline.results()
    assert result["result"] == "unreadable"
    assert result["reason"].startswith("the check's clientId: not a ComplyCube id")
    assert ("unreadable", CHECK["id"]) in on_record(pipeline.runtime, event_id)
    assert_nothing_dead(pipeline)


def decide(pipeline: Pipeline, api: ComplyCube, checks: list[str], **session: object) -> Decision:
    """The session, listing ``checks``, with ``session``'s fields, looked at once: its decision."""
    api.session.update(session, allRelatedChecks=[{"checkId": check_id} for check_id in checks])
    pipeline.submit(SESSION["id"])
    pipeline.work()
    assert_nothing_dead(pipeline)
    [decision] = pipeline.decisions(SESSION["id"])
    return decision


def test_a_session_listing_check_ids_that_are_not_complycube_ids_is_decided_for_a_person(
    pipeline: Pipeline, api: ComplyCube
) -> None:
    api.checks[CHECK["id"]] = {**CHECK, "result": {"outcome": "clear"}}
    decision = decide(pipeline, api, [CHECK["id"], *BAD_IDS])
    # The session, and its client's checks listed by a query httpx encoded: nothing else.
    assert api.paths == [
        f"/v1/workflowSessions/{SESSION['id']}".encode(),
        f"/v1/checks?clientId={SESSION['clientId']}&page=1&pageSize=1000".encode(),
    ]
    assert (decision.outcome, decision.needs_review) == ("attention", True)
    unreadable = [d["check_id"] for d in decision.discrepancies if d["issue"] == Issue.CHECK_UNREADABLE]
    assert unreadable == BAD_IDS


def test_a_session_whose_client_id_is_not_a_complycube_id_has_its_checks_fetched_alone(
    pipeline: Pipeline, api: ComplyCube
) -> None:
    api.checks[CHECK["id"]] = CHECK
    decision = decide(pipeline, api, [CHECK["id"]], clientId="../clients/cl1")
    assert api.paths == [
        f"/v1/workflowSessions/{SESSION['id']}".encode(),
        f"/v1/checks/{CHECK['id']}".encode(),
    ]
    assert decision.outcome == "rejected"


def test_the_watchdog_and_the_backfill_request_no_id_that_is_not_a_complycube_id(
    pipeline: Pipeline, api: ComplyCube
) -> None:
    api.webhooks = [{"id": "../clients/cl1", "url": "https://cubehook.example/hook", "enabled": False}]
    updated = format_time(datetime.now(UTC))
    api.listed = [
        {"id": bad, "status": "complete", "updatedAt": updated, "createdAt": updated} for bad in BAD_IDS
    ]
    report = operations.watchdog(pipeline.runtime, None, auto_enable=True, lookback=timedelta(hours=1))
    assert (report.disabled, report.enabled) == (["../clients/cl1"], [])  # seen, alerted, not re-enabled
    assert report.backfill is not None
    assert (report.backfill.listed, report.backfill.queued) == (0, [])
    assert {path.split(b"?")[0] for path in api.paths} == {b"/v1/webhooks", b"/v1/workflowSessions"}
    assert pipeline.queue.count == 0
