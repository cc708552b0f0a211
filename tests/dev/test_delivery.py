"""Webhook deliveries: signed as ComplyCube signs, retried on its schedule, then disabled."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from complycube.eventverifier import EventVerifier
from starlette.testclient import TestClient

from cubehook_dev.simulator.delivery import RETRY_DELAYS
from cubehook_dev.simulator.faults import FaultConfig, FaultInjector
from service.events import Event, read_event
from service.signature import HEADER, verify
from tests.dev.conftest import AUTH, Receiver, scenario, wait_idle

SECRET = "simulator_webhook_secret"


def test_deliveries_verify_with_our_verifier_and_complycubes_sdk(
    simulator: TestClient, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    created = scenario(simulator, preset="clear")
    wait_idle(simulator)
    assert len(receiver.requests) == 6  # started, processing, 3 checks, completed
    sdk = EventVerifier(SECRET)
    for request in receiver.requests:
        body, header = request.content, request.headers[HEADER]
        verify(body, header, [SECRET.encode()])
        assert sdk.construct_event(body, header).id == json.loads(body)["id"]
    capsys.readouterr()  # the SDK prints both signatures to stdout: keep them out of the test log
    last = read_event(receiver.requests[-1].content)
    assert isinstance(last, Event)
    assert (last.type, last.resource_id) == ("workflow.session.completed", created["sessionId"])


def test_a_failed_delivery_is_retried_until_it_succeeds(simulator: TestClient, receiver: Receiver) -> None:
    receiver.fail_first = 2
    scenario(simulator, preset="clear")
    wait_idle(simulator)
    records = simulator.get("/_sim/deliveries").json()
    by_event: dict[str, list[tuple[int, str]]] = {}
    for record in records:
        by_event.setdefault(record["eventId"], []).append((record["attempt"], record["outcome"]))
    assert len(by_event) == 6
    assert all(tries == [(0, "500"), (1, "500"), (2, "202")] for tries in by_event.values())


def test_after_ten_failed_retries_the_webhook_is_disabled(simulator: TestClient, receiver: Receiver) -> None:
    receiver.status = 500
    hook_id = simulator.get("/v1/webhooks", headers=AUTH).json()["items"][0]["id"]
    scenario(simulator, preset="clear", final_status="abandoned")
    wait_idle(simulator)
    records = simulator.get("/_sim/deliveries").json()
    first_event = records[0]["eventId"]
    tries = [r for r in records if r["eventId"] == first_event]
    assert [r["attempt"] for r in tries][: len(RETRY_DELAYS) + 1] == list(range(len(RETRY_DELAYS) + 1))
    assert all(r["outcome"] == "500" for r in tries[: len(RETRY_DELAYS) + 1])
    assert any(r["outcome"] == "disabled" for r in records)
    assert simulator.get(f"/v1/webhooks/{hook_id}", headers=AUTH).json()["enabled"] is False
    # Nothing more is sent while disabled...
    receiver.status = 202
    sent_before = len(receiver.requests)
    scenario(simulator, preset="clear")
    wait_idle(simulator)
    assert len(receiver.requests) == sent_before
    assert simulator.get("/_sim/deliveries").json()[-1]["outcome"] == "skipped: disabled"
    # ...until someone re-enables it.
    simulator.post(f"/v1/webhooks/{hook_id}", json={"enabled": True}, headers=AUTH)
    scenario(simulator, preset="clear")
    wait_idle(simulator)
    assert len(receiver.requests) == sent_before + 6


def test_duplicate_deliveries_repeat_the_same_signed_bytes(
    make_simulator: Callable[..., TestClient], receiver: Receiver
) -> None:
    simulator = make_simulator(FaultConfig(seed=1, duplicate_rate=1.0))
    scenario(simulator, preset="clear")
    wait_idle(simulator)
    bodies = [r.content for r in receiver.requests]
    assert len(bodies) == 12
    assert all(bodies.count(body) == 2 for body in bodies)


def test_reordered_deliveries_arrive_after_a_later_event(
    make_simulator: Callable[..., TestClient], receiver: Receiver
) -> None:
    faults = FaultConfig(seed=5, reorder_rate=0.3)
    simulator = make_simulator(faults)
    for _ in range(4):
        scenario(simulator, preset="clear")
    wait_idle(simulator)
    published: list[str] = simulator.app.state.simulator.deliverer.published  # type: ignore[attr-defined]
    arrived = [json.loads(r.content)["id"] for r in receiver.requests]
    assert sorted(arrived) == sorted(published)
    assert arrived != published
    injector = FaultInjector(faults)
    held = [i for i, event_id in enumerate(published) if injector.reorder(event_id)]
    assert held
    position = {event_id: n for n, event_id in enumerate(arrived)}
    for i in held:
        later = [e for e in published[i + 1 :] if not injector.reorder(e)]
        if later:  # overtaken by the next event that was not held itself
            assert position[published[i]] > position[later[0]]
