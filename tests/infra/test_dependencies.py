"""The database and ComplyCube fail under the running system: PostgreSQL stopped for 30 s, then
ComplyCube answering 503 to every call for 60 s. Nothing may be lost, doubled or left dead, no
process may stop, and the alerts on each dependency must show the outage."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import pytest

from tests.infra.conftest import Launch
from tests.infra.metrics import Alert
from tests.infra.run import Fault, run_fault
from tests.infra.servers import PostgresServer, RedisProcess

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]

WORKERS = ("worker1", "worker2")


def test_postgresql_stopped_for_30_seconds(
    durable_redis: RedisProcess, postgres: PostgresServer, launch: Launch, tmp_path: Path
) -> None:
    stack = launch(durable_redis.url, durable_redis.client, postgres.url)

    def restart() -> None:
        time.sleep(30)
        postgres.start()

    alert = Alert("cubehook_database_up", WORKERS, during=0, any_source=True, after=1)
    run_fault(stack, Fault("database-outage", postgres.stop, restart, (alert,)), tmp_path)


def test_complycube_answering_503_for_60_seconds(
    durable_redis: RedisProcess, sqlite_url: str, launch: Launch, tmp_path: Path
) -> None:
    stack = launch(durable_redis.url, durable_redis.client, sqlite_url)

    def faults(**config: object) -> None:
        httpx2.put(f"{stack.sim_url}/_sim/faults", json={"seed": 7, **config}, timeout=5).raise_for_status()

    def recover() -> None:
        time.sleep(60)
        faults()

    alert = Alert("cubehook_complycube_up", WORKERS, during=0, any_source=True, after=1)
    fault = Fault("complycube-503", lambda: faults(rate_500=1.0, status_5xx=503), recover, (alert,))
    run_fault(stack, fault, tmp_path)
