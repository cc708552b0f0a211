"""Redis under the running system fails: killed and restarted with its append-only file, killed and
restarted empty, or its primary killed under Sentinel. Nothing may be lost, doubled or left dead,
no process may stop, and the Redis alerts must show the outage."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.infra.conftest import Launch
from tests.infra.metrics import Alert
from tests.infra.run import Fault, run_fault
from tests.infra.servers import RedisProcess, SentinelGroup

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]

WORKERS = ("worker1", "worker2")
OUTAGE_SECONDS = 5.0


def redis_alerts() -> tuple[Alert, ...]:
    return (
        Alert("cubehook_worker_redis_up", WORKERS, during=0, after=1),
        Alert("cubehook_redis_up", ("web",), during=0, after=1),
    )


def restart_after(server: RedisProcess, seconds: float) -> None:
    time.sleep(seconds)
    server.start()


def test_redis_killed_and_restarted_with_its_append_only_file(
    durable_redis: RedisProcess, launch: Launch, sqlite_url: str, tmp_path: Path
) -> None:
    stack = launch(durable_redis.url, durable_redis.client, sqlite_url)
    fault = Fault(
        "redis-restart",
        durable_redis.kill,
        lambda: restart_after(durable_redis, OUTAGE_SECONDS),
        redis_alerts(),
    )
    run_fault(stack, fault, tmp_path)


def test_redis_killed_and_restarted_empty(
    volatile_redis: RedisProcess, launch: Launch, sqlite_url: str, tmp_path: Path
) -> None:
    """Queued jobs, dedup keys, session state, leases: all gone. What was accepted must still be
    decided and delivered once, from what the database and ComplyCube still hold."""
    stack = launch(volatile_redis.url, volatile_redis.client, sqlite_url)
    loss = Alert("cubehook_redis_data_loss_total", ("web", *WORKERS), after=1, at_least=True, summed=True)
    fault = Fault(
        "redis-empty", volatile_redis.kill, lambda: restart_after(volatile_redis, OUTAGE_SECONDS),
        (*redis_alerts(), loss), redis_kept=False, may_forget=True,
    )  # fmt: skip
    run_fault(stack, fault, tmp_path)


@pytest.mark.parametrize("wait", ["auto", "0"], ids=["wait", "no-wait"])
def test_redis_primary_killed_under_sentinel(
    wait: str, sentinel_group: SentinelGroup, launch: Launch, sqlite_url: str, tmp_path: Path
) -> None:
    """The processes find the primary through the sentinels; it is SIGKILLed, a sentinel promotes
    the replica, and the old primary comes back as a replica. Replication is asynchronous, so Redis
    may lose the last writes: the checks read the database, not Redis's history. With WAIT (the
    default, ``auto``: a replica is there) no event answered 202 is forgotten; without it
    (CUBEHOOK_REDIS_MIN_REPLICAS=0) the run measures how many are, and what the backfill saves."""
    group = sentinel_group
    stack = launch(group.url, group.client, sqlite_url, CUBEHOOK_REDIS_MIN_REPLICAS=wait)
    old = group.primary

    def failover() -> None:
        deadline = time.monotonic() + 30
        while group.master_port() in (old.port, None):
            assert time.monotonic() < deadline, "the sentinels did not promote the replica within 30 s"
            time.sleep(0.1)
        old.start()  # back, and made a replica of the new primary by the sentinels

    fault = Fault(
        f"sentinel-failover-{'wait' if wait == 'auto' else 'no-wait'}", old.kill, failover, redis_alerts(),
        redis_kept=False, may_forget=wait == "0",
    )  # fmt: skip
    run_fault(stack, fault, tmp_path)
