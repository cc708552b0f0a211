"""A session's checks come from one list call: two ComplyCube calls per complete session whatever
its number of checks, counted where ComplyCube would count them (the simulator)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from cubehook_dev.simulator.world import CheckRecord
from service.complycube_models import WorkflowSession
from tests.conftest import SIM_API_KEY, SimServer
from tests.jobs.conftest import Pipeline
from workers.audit.privacy import minimal
from workers.complycube.client import ComplyCubeClient

SESSION_GET, CHECKS_LIST, CHECK_GET = "GET /v1/workflowSessions/{id}", "GET /v1/checks", "GET /v1/checks/{id}"


def calls_during(sim: SimServer, before: Counter[str]) -> dict[str, int]:
    return {route: n for route, n in (sim.simulator.calls - before).items() if n}


def checks_of(n: int) -> list[dict[str, str]]:
    """n checks, the last one rejected, so that a decision that missed it would say so."""
    return [{"type": "document_check", "outcome": "clear"}] * (n - 1) + [
        {"type": "extensive_screening_check", "outcome": "rejected"}
    ]


@pytest.mark.parametrize("n", [1, 3, 12])
def test_a_complete_session_costs_two_calls_whatever_its_checks(
    pipeline: Pipeline, sim: SimServer, n: int
) -> None:
    sid = sim.create(mode="settled", checks=checks_of(n))["sessionId"]
    before = Counter(sim.simulator.calls)
    pipeline.submit(sid)
    pipeline.work()
    assert calls_during(sim, before) == {SESSION_GET: 1, CHECKS_LIST: 1}
    [decision] = pipeline.decisions(sid)
    assert decision.outcome == "rejected"
    assert [c["outcome"] for c in decision.checks] == ["clear"] * (n - 1) + ["rejected"]
    # Each check's own JSON, cut from the list, is on the audit trail as the API sent it (minimised,
    # the default snapshot mode: workers.audit.privacy).
    [snapshot] = [e for e in pipeline.runtime.audit.history(sid) if e["entry"] == "snapshot"]
    world = sim.simulator.world
    sent = {cid: world.render_check(world.checks[cid]) for cid in snapshot["checks"]}
    assert snapshot["checks"] == minimal({}, sent)[1]
    assert len(snapshot["checks"]) == n


def test_a_listed_check_the_list_did_not_return_is_fetched_alone(pipeline: Pipeline, sim: SimServer) -> None:
    created = sim.create(mode="settled", checks=checks_of(3))
    sid, world = created["sessionId"], sim.simulator.world
    rejected = world.sessions[sid].check_ids[2]
    world.client_checks[created["clientId"]].remove(rejected)  # the list leaves it out; its GET has it
    before = Counter(sim.simulator.calls)
    pipeline.submit(sid)
    pipeline.work()
    assert calls_during(sim, before) == {SESSION_GET: 1, CHECKS_LIST: 1, CHECK_GET: 1}
    [decision] = pipeline.decisions(sid)
    assert decision.outcome == "rejected"  # the check fetched alone counted
    assert not decision.discrepancies


def test_a_listed_check_the_api_does_not_know_is_missing() -> None:
    """The list lacks one of the three; its own GET is 404: reconcile is told it is missing."""
    listed = [{"id": f"c{n}", "clientId": "cl1", "status": "complete"} for n in (3, 1)]
    requests: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request.url.path)
        if request.url.path == "/v1/checks":
            return httpx2.Response(
                200, json={"page": 1, "pageSize": 1000, "totalItems": 2, "pages": 1, "items": listed}
            )
        return httpx2.Response(404, json={"type": "resource_not_found", "message": "no"})

    api = ComplyCubeClient(
        "https://api.example.test/v1", SecretStr("test_k"), transport=httpx2.MockTransport(handler)
    )
    refs = [{"checkId": f"c{n}"} for n in (1, 2, 3)]
    session = WorkflowSession.model_validate({"id": "s1", "clientId": "cl1", "allRelatedChecks": refs})
    checks = api.session_checks(session)
    assert {cid: f.raw if f else None for cid, f in checks.items()} == {
        "c1": listed[1],
        "c2": None,
        "c3": listed[0],
    }
    assert requests == ["/v1/checks", "/v1/checks/c2"]


def client(sim: SimServer, **options: Any) -> ComplyCubeClient:
    return ComplyCubeClient(f"{sim.url}/v1", SecretStr(SIM_API_KEY), **options)


def test_the_walk_reads_every_page_it_needs_and_no_more(sim: SimServer) -> None:
    created = sim.create(mode="settled", checks=checks_of(5))
    world = sim.simulator.world
    session = WorkflowSession.model_validate(sim.session(created["sessionId"]))
    mine = [ref.check_id for ref in session.all_related_checks]
    older = [f"old{n:021d}" for n in range(3)]  # the client's older checks: on pages past the session's
    for check_id in older:
        world.checks[check_id] = CheckRecord(check_id, created["clientId"], "document_check", "clear", 0, 0)
    world.client_checks[created["clientId"]][:0] = older
    before = Counter(sim.simulator.calls)
    checks = client(sim, check_page_size=2).session_checks(session)
    # Newest first, two a page: [c5 c4] [c3 c2] [c1 old] [old old]: three pages hold the session's five.
    assert calls_during(sim, before) == {CHECKS_LIST: 3}
    assert list(checks) == mine
    assert all(f is not None and f.model.client_id == created["clientId"] for f in checks.values())


def test_a_session_without_a_client_id_has_its_checks_fetched_one_by_one(sim: SimServer) -> None:
    created = sim.create(mode="settled", checks=checks_of(2))
    document = sim.session(created["sessionId"])
    del document["clientId"]
    before = Counter(sim.simulator.calls)
    checks = client(sim).session_checks(WorkflowSession.model_validate(document))
    assert calls_during(sim, before) == {CHECK_GET: 2}
    assert [f.model.id for f in checks.values() if f] == [r["checkId"] for r in document["allRelatedChecks"]]


def test_the_list_is_asked_for_the_clients_checks_a_thousand_a_page() -> None:
    seen: list[httpx2.URL] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url)
        return httpx2.Response(
            200, json={"page": 1, "pageSize": 1000, "totalItems": 0, "pages": 0, "items": []}
        )

    api = ComplyCubeClient(
        "https://api.example.test/v1", SecretStr("test_k"), transport=httpx2.MockTransport(handler)
    )
    session = WorkflowSession.model_validate({"id": "s1", "clientId": "c1", "allRelatedChecks": []})
    assert api.session_checks(session) == {}
    assert seen == []  # a session listing no checks costs nothing more
    api.list_checks(clientId="c1", page=1, pageSize=1000)
    assert seen[0].path == "/v1/checks"
    assert dict(seen[0].params) == {"clientId": "c1", "page": "1", "pageSize": "1000"}
