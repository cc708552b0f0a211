import pytest
from pydantic import ValidationError

from cubehook_dev.simulator.faults import Fault, FaultConfig, FaultInjector

CONFIG = FaultConfig(seed=7, rate_429=0.2, rate_500=0.2, rate_timeout=0.1, latency_ms=5, latency_jitter_ms=10)


def run(injector: FaultInjector, paths: list[str]) -> list[tuple[str, Fault, float, int | None]]:
    out = []
    for path in paths:
        decision = injector.for_request("GET", path)
        out.append((path, decision.fault, decision.delay_seconds, decision.retry_after))
    return out


PATHS = [f"/v1/checks/{n % 7}" for n in range(300)]


def test_same_seed_same_faults() -> None:
    assert run(FaultInjector(CONFIG), PATHS) == run(FaultInjector(CONFIG), PATHS)


def test_other_seed_other_faults() -> None:
    other = CONFIG.model_copy(update={"seed": 8})
    assert run(FaultInjector(CONFIG), PATHS) != run(FaultInjector(other), PATHS)


def test_faults_do_not_depend_on_interleaving() -> None:
    """Requests to one path meet the same faults whatever other requests come between them."""
    alone = [d for d in run(FaultInjector(CONFIG), PATHS) if d[0] == "/v1/checks/3"]
    shuffled = list(reversed(PATHS))
    mixed = [d for d in run(FaultInjector(CONFIG), shuffled) if d[0] == "/v1/checks/3"]
    assert alone == mixed


def test_shares_are_respected() -> None:
    injector = FaultInjector(CONFIG)
    faults = [injector.for_request("GET", "/v1/x").fault for _ in range(20_000)]
    share = {f: faults.count(f) / len(faults) for f in Fault}
    assert share[Fault.TOO_MANY_REQUESTS] == pytest.approx(0.2, abs=0.02)
    assert share[Fault.SERVER_ERROR] == pytest.approx(0.2, abs=0.02)
    assert share[Fault.TIMEOUT] == pytest.approx(0.1, abs=0.02)
    assert share[Fault.NONE] == pytest.approx(0.5, abs=0.02)


def test_latency_is_fixed_plus_bounded_jitter() -> None:
    delays = [d[2] for d in run(FaultInjector(CONFIG.model_copy(update={"rate_timeout": 0})), PATHS)]
    assert all(0.005 <= d <= 0.015 for d in delays)
    assert len(set(delays)) > 100


def test_some_429s_carry_retry_after() -> None:
    decisions = run(FaultInjector(CONFIG), PATHS)
    retry_afters = {d[3] for d in decisions if d[1] is Fault.TOO_MANY_REQUESTS}
    assert retry_afters == {None, 1}


def test_reconfigure_starts_the_sequence_again() -> None:
    injector = FaultInjector(CONFIG)
    first = run(injector, PATHS)
    injector.reconfigure(CONFIG)
    assert run(injector, PATHS) == first


def test_delivery_faults_are_per_event_and_seeded() -> None:
    config = FaultConfig(seed=1, duplicate_rate=0.5, reorder_rate=0.5)
    a, b = FaultInjector(config), FaultInjector(config)
    ids = [f"evt{n}" for n in range(200)]
    assert [a.duplicate(i) for i in ids] == [b.duplicate(i) for i in ids]
    assert 60 < sum(a.reorder(i) for i in ids) < 140


def test_shares_must_fit() -> None:
    with pytest.raises(ValidationError, match="must not exceed 1"):
        FaultConfig(rate_429=0.6, rate_500=0.6)


def test_the_updated_filter_fault() -> None:
    query = {"updatedAfter": "2026-01-01T00:00:00.000Z", "page": "2"}
    assert FaultInjector().session_list_query(query) == query
    assert FaultInjector(FaultConfig(updated_filter="empty")).session_list_query(query) is None
    assert FaultInjector(FaultConfig(updated_filter="ignored")).session_list_query(query) == {"page": "2"}
    assert FaultInjector(FaultConfig(updated_filter="empty")).session_list_query({"page": "1"}) == {
        "page": "1"
    }


def test_server_errors_answer_the_chosen_status() -> None:
    assert FaultInjector(FaultConfig(rate_500=1.0)).for_request("GET", "/v1/x").status == 500
    outage = FaultInjector(FaultConfig(rate_500=1.0, status_5xx=503))
    decisions = [outage.for_request("GET", f"/v1/checks/{n}") for n in range(50)]
    assert {(d.fault, d.status) for d in decisions} == {(Fault.SERVER_ERROR, 503)}
    half = FaultInjector(FaultConfig(seed=2, rate_500=0.5, status_5xx=502))
    statuses = {half.for_request("GET", "/v1/x").status for _ in range(200)}
    assert statuses == {None, 502}  # the healthy answers carry no status of their own


def test_the_server_error_status_is_a_5xx() -> None:
    for status in (499, 600):
        with pytest.raises(ValidationError):
            FaultConfig(status_5xx=status)
