"""ComplyCubeClient against the simulator over real HTTP, with seeded faults."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from service.errors import UpstreamNotFound, UpstreamRejected, UpstreamUnavailable
from tests.conftest import SIM_API_KEY, SimServer
from workers.complycube.client import ComplyCubeClient


def client(sim: SimServer, key: str = SIM_API_KEY, **options: object) -> tuple[ComplyCubeClient, list[float]]:
    sleeps: list[float] = []
    return ComplyCubeClient(f"{sim.url}/v1", SecretStr(key), sleep=sleeps.append, **options), sleeps  # type: ignore[arg-type]


def test_reads_sessions_checks_clients_and_lists(sim: SimServer) -> None:
    created = sim.create(preset="rejected", mode="settled")
    api, _ = client(sim)
    session = api.get_session(created["sessionId"])
    assert session.model.outcome == "rejected"
    assert session.raw["id"] == created["sessionId"]
    check = api.get_check(session.model.all_related_checks[0].check_id).model
    assert check.result is not None
    assert check.result.outcome == "rejected"
    assert api.get_client(created["clientId"]).model.id == created["clientId"]
    page = api.list_sessions(clientId=created["clientId"]).model
    assert [s.id for s in page.items] == [created["sessionId"]]


def test_429s_with_and_without_retry_after_are_retried(sim: SimServer) -> None:
    created = sim.create(preset="clear", mode="settled")
    sim.faults(seed=4, rate_429=0.6, retry_after_seconds=0)
    api, sleeps = client(sim, max_attempts=20, budget_seconds=60)
    for _ in range(10):
        assert api.get_session(created["sessionId"]).model.outcome == "clear"
    assert sleeps, "some 429s should have been met"
    assert 0.0 in sleeps  # Retry-After: 0 honoured
    assert any(s > 0 for s in sleeps)  # jittered back-off where no Retry-After came


def test_500s_then_success(sim: SimServer) -> None:
    created = sim.create(preset="clear", mode="settled")
    sim.faults(seed=2, rate_500=0.5)
    api, sleeps = client(sim, max_attempts=20, budget_seconds=60)
    for _ in range(10):
        assert api.get_session(created["sessionId"]).model.status == "complete"
    assert sleeps


def test_timeouts_become_transient_errors(sim: SimServer) -> None:
    sim.faults(seed=1, rate_timeout=1.0, timeout_seconds=2)
    api, _ = client(sim, timeout=0.2, max_attempts=2)
    with pytest.raises(UpstreamUnavailable, match="Timeout"):
        api.get_session("anything")


def test_404_and_bad_key(sim: SimServer) -> None:
    api, _ = client(sim)
    with pytest.raises(UpstreamNotFound):
        api.get_session("000000000000000000000000")
    wrong, _ = client(sim, key="test_wrong")
    with pytest.raises(UpstreamRejected) as caught:
        wrong.get_session("000000000000000000000000")
    assert caught.value.status == 401
