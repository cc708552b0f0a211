"""The dev package's tests. The simulator runs under a TestClient, its webhooks go to a receiver
on a MockTransport (this ``receiver`` stands in for the suite's real HTTP one)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx2
import pytest
from starlette.testclient import TestClient

from cubehook_dev.simulator.app import SimConfig, create_simulator_app
from cubehook_dev.simulator.faults import FaultConfig

API_KEY = "test_simulator_key"
AUTH = {"Authorization": API_KEY}


class Receiver:
    """A webhook receiver on an httpx MockTransport: records each delivery, answers as told."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.status = 202  # the answer to every delivery...
        self.fail_first = 0  # ...after this many 500s for each event

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        event_id = json.loads(request.content)["id"]
        seen = sum(json.loads(r.content)["id"] == event_id for r in self.requests)
        return httpx2.Response(500 if seen <= self.fail_first else self.status)

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handler)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def make_simulator(receiver: Receiver) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def build(faults: FaultConfig | None = None, **config: object) -> TestClient:
        values: dict[str, object] = {
            "webhook_url": "http://receiver.test/webhooks/complycube",
            "retry_scale": 1e-6,
            "reorder_hold": 0.05,
        }
        values.update(config)
        sim_config = SimConfig(faults=faults or FaultConfig(seed=1), **values)  # type: ignore[arg-type]
        client = TestClient(create_simulator_app(sim_config, transport=receiver.transport))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def simulator(make_simulator: Callable[..., TestClient]) -> TestClient:
    return make_simulator()


def scenario(client: TestClient, **spec: object) -> dict[str, str]:
    response = client.post("/_sim/sessions", json=spec)
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


def wait_idle(client: TestClient) -> None:
    assert client.get("/_sim/idle", params={"timeout": "20"}).json() == {"idle": True}
