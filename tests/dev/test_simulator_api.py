"""The simulator's ComplyCube API: shapes validated by the models the worker uses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from cubehook_dev.simulator.faults import FaultConfig
from service.complycube_models import ApiError, Check, Client, Page, Webhook, WorkflowSession
from tests.dev.conftest import AUTH, scenario, wait_idle


def test_played_session_is_served_in_complycube_shapes(simulator: TestClient) -> None:
    created = scenario(simulator, preset="attention")
    wait_idle(simulator)
    session = WorkflowSession.model_validate_json(
        simulator.get(f"/v1/workflowSessions/{created['sessionId']}", headers=AUTH).content
    )
    assert (session.status, session.outcome, session.client_id) == (
        "complete",
        "attention",
        created["clientId"],
    )
    outcomes = []
    for ref in session.all_related_checks:
        check = Check.model_validate_json(simulator.get(f"/v1/checks/{ref.check_id}", headers=AUTH).content)
        assert check.type == ref.type
        outcomes.append(check.result.outcome if check.result else None)
    assert outcomes == ["clear", "attention", "clear"]
    client = Client.model_validate_json(
        simulator.get(f"/v1/clients/{created['clientId']}", headers=AUTH).content
    )
    assert client.type == "person"


def test_list_endpoint_pages_and_filters(simulator: TestClient) -> None:
    for preset in ("clear", "rejected", "clear"):
        scenario(simulator, preset=preset, mode="settled")
    page = Page[WorkflowSession].model_validate_json(
        simulator.get("/v1/workflowSessions", params={"outcome": "clear"}, headers=AUTH).content
    )
    assert page.total_items == 2
    assert {s.outcome for s in page.items} == {"clear"}


def test_unplayed_scenario_is_final_at_once_and_sends_nothing(
    simulator: TestClient, receiver: object
) -> None:
    created = scenario(simulator, preset="rejected", mode="settled")
    wait_idle(simulator)
    doc = simulator.get(f"/v1/workflowSessions/{created['sessionId']}", headers=AUTH).json()
    assert doc["outcome"] == "rejected"
    assert simulator.get("/_sim/deliveries").json() == []


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "wrong"}, {"Authorization": f"Bearer {AUTH['Authorization']}"}]
)
def test_api_key_is_required_raw(simulator: TestClient, headers: dict[str, str]) -> None:
    response = simulator.get("/v1/workflowSessions", headers=headers)
    assert response.status_code == 401
    assert ApiError.model_validate_json(response.content).type == "unauthorized"


@pytest.mark.parametrize(
    "path", ["/v1/workflowSessions/nope", "/v1/checks/nope", "/v1/clients/nope", "/v1/webhooks/nope"]
)
def test_unknown_ids_are_404_resource_not_found(simulator: TestClient, path: str) -> None:
    response = simulator.get(path, headers=AUTH)
    assert response.status_code == 404
    assert ApiError.model_validate_json(response.content).type == "resource_not_found"


def test_webhooks_list_create_disable(simulator: TestClient) -> None:
    listed = Page[Webhook].model_validate_json(simulator.get("/v1/webhooks", headers=AUTH).content)
    assert [h.url for h in listed.items] == ["http://receiver.test/webhooks/complycube"]
    created = simulator.post("/v1/webhooks", json={"url": "http://other.test/hook"}, headers=AUTH)
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    hook_id = listed.items[0].id
    updated = simulator.post(f"/v1/webhooks/{hook_id}", json={"enabled": False}, headers=AUTH)
    assert Webhook.model_validate_json(updated.content).enabled is False
    assert (
        Webhook.model_validate_json(simulator.get(f"/v1/webhooks/{hook_id}", headers=AUTH).content).enabled
        is False
    )


def test_a_deleted_webhook_is_gone_and_sends_nothing_more(simulator: TestClient) -> None:
    [first] = Page[Webhook].model_validate_json(simulator.get("/v1/webhooks", headers=AUTH).content).items
    second = simulator.post("/v1/webhooks", json={"url": "http://other.test/hook"}, headers=AUTH).json()
    deleted = simulator.delete(f"/v1/webhooks/{first.id}", headers=AUTH)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert simulator.get(f"/v1/webhooks/{first.id}", headers=AUTH).status_code == 404
    listed = Page[Webhook].model_validate_json(simulator.get("/v1/webhooks", headers=AUTH).content)
    assert [h.id for h in listed.items] == [second["id"]]
    again = simulator.delete(f"/v1/webhooks/{first.id}", headers=AUTH)
    assert (again.status_code, again.json()["type"]) == (404, "resource_not_found")
    assert simulator.delete(f"/v1/webhooks/{second['id']}").status_code == 401  # the API key, as always
    scenario(simulator, preset="clear")
    wait_idle(simulator)
    assert {d["webhookId"] for d in simulator.get("/_sim/deliveries").json()} == {second["id"]}


def test_bad_control_input_is_400(simulator: TestClient) -> None:
    response = simulator.post("/_sim/sessions", json={"preset": "nonsense"})
    assert response.status_code == 400
    assert "preset" in response.json()["message"]
    assert simulator.put("/_sim/faults", json={"rate_500": 2}).status_code == 400


def _codes(client: TestClient, n: int) -> list[tuple[int, str | None]]:
    answers = [client.get("/v1/workflowSessions", headers=AUTH) for _ in range(n)]
    return [(a.status_code, a.headers.get("retry-after")) for a in answers]


def test_injected_faults_are_reproducible_under_a_seed(make_simulator: Callable[..., TestClient]) -> None:
    faults = FaultConfig(seed=11, rate_429=0.3, rate_500=0.2)
    first = _codes(make_simulator(faults), 60)
    second = _codes(make_simulator(faults), 60)
    assert first == second
    codes = {code for code, _ in first}
    assert codes == {200, 429, 500}
    assert {ra for code, ra in first if code == 429} == {None, "1"}
    assert _codes(make_simulator(faults.model_copy(update={"seed": 12})), 60) != first


def test_faults_change_at_run_time(simulator: TestClient) -> None:
    assert simulator.put("/_sim/faults", json={"seed": 1, "rate_500": 1.0}).status_code == 200
    response = simulator.get("/v1/workflowSessions", headers=AUTH)
    assert response.status_code == 500
    assert ApiError.model_validate_json(response.content).type == "internal_server_error"
    assert simulator.get("/_sim/faults").json()["rate_500"] == 1.0
    simulator.put("/_sim/faults", json={})
    assert simulator.get("/v1/workflowSessions", headers=AUTH).status_code == 200


def test_an_outage_answers_503_to_every_call(simulator: TestClient) -> None:
    simulator.put("/_sim/faults", json={"rate_500": 1.0, "status_5xx": 503})
    for path in ("/v1/workflowSessions", "/v1/checks", "/v1/webhooks"):
        response = simulator.get(path, headers=AUTH)
        assert response.status_code == 503
        assert ApiError.model_validate_json(response.content).type == "service_unavailable"
    simulator.put("/_sim/faults", json={})
    assert simulator.get("/v1/workflowSessions", headers=AUTH).status_code == 200


def test_timeout_fault_holds_the_answer_back(simulator: TestClient) -> None:
    simulator.put("/_sim/faults", json={"rate_timeout": 1.0, "timeout_seconds": 0.05})
    response = simulator.get("/v1/workflowSessions", headers=AUTH)
    assert response.status_code == 504


def test_manual_sessions_advance_one_step_at_a_time(simulator: TestClient, receiver: object) -> None:
    created = scenario(simulator, preset="rejected", mode="manual")
    path = f"/v1/workflowSessions/{created['sessionId']}"
    assert simulator.get(path, headers=AUTH).json()["status"] == "started"
    first = simulator.post(f"/_sim/sessions/{created['sessionId']}/advance").json()
    assert first == {"status": "processing", "events": ["workflow.session.processing"]}
    second = simulator.post(f"/_sim/sessions/{created['sessionId']}/advance").json()
    assert second["status"] == "complete"
    assert second["events"][-1] == "workflow.session.completed"
    assert simulator.get(path, headers=AUTH).json()["outcome"] == "rejected"
    assert simulator.post("/_sim/sessions/nope/advance").status_code == 404


def test_checks_list_serves_a_clients_checks_in_pages(simulator: TestClient) -> None:
    created = scenario(simulator, preset="rejected", mode="settled", checks=[{"type": "document_check"}] * 5)
    session = simulator.get(f"/v1/workflowSessions/{created['sessionId']}", headers=AUTH).json()
    listed = [ref["checkId"] for ref in session["allRelatedChecks"]]
    scenario(simulator, preset="clear", mode="settled")  # someone else's checks
    pages = [
        Page[Check].model_validate_json(
            simulator.get(
                "/v1/checks", params={"clientId": created["clientId"], "pageSize": 2, "page": n}, headers=AUTH
            ).content
        )
        for n in (1, 2, 3)
    ]
    assert [p.pages for p in pages] == [3, 3, 3]
    assert [c.id for p in pages for c in p.items] == list(reversed(listed))
    malformed = simulator.get(
        "/v1/checks", params={"clientId": created["clientId"], "pageSize": 1001}, headers=AUTH
    )
    assert (malformed.status_code, malformed.json()["items"]) == (200, [])


def test_faults_and_the_call_count_cover_the_checks_list(simulator: TestClient) -> None:
    simulator.put("/_sim/faults", json={"seed": 1, "rate_500": 1.0})
    assert simulator.get("/v1/checks", headers=AUTH).status_code == 500
    simulator.put("/_sim/faults", json={})
    simulator.get("/v1/checks", headers=AUTH)
    simulator.get("/v1/checks/abc", headers=AUTH)
    simulator.get("/_sim/health")  # not ComplyCube's: not counted
    assert simulator.get("/_sim/calls").json() == {
        "total": 3, "routes": {"GET /v1/checks": 2, "GET /v1/checks/{id}": 1}
    }  # fmt: skip


def test_the_updated_filter_fault_empties_the_filtered_session_list(simulator: TestClient) -> None:
    scenario(simulator, preset="clear", mode="settled")
    query = {"updatedAfter": "2020-05-01T18:55:03.015Z"}
    assert simulator.get("/v1/workflowSessions", params=query, headers=AUTH).json()["totalItems"] == 1
    simulator.put("/_sim/faults", json={"updated_filter": "empty"})
    assert simulator.get("/v1/workflowSessions", params=query, headers=AUTH).json()["items"] == []
    assert simulator.get("/v1/workflowSessions", headers=AUTH).json()["totalItems"] == 1  # unfiltered
