"""Clients from a redis+sentinel:// URL on real servers: they read and write, follow a failover
without a restart (blocking and asyncio), carry RQ, and `cubehook status` names the primary."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from service.errors import ConfigError
from service.redis import async_redis_client, redis_client, topology
from service.settings import WorkerClass
from tests.redis_ha.conftest import Replicated, wait_until
from workers import worker
from workers.operations import status

pytestmark = pytest.mark.timeout(90)
FOLLOW_SECONDS = 15  # down-after-milliseconds 1000, the vote, the promotion: a few seconds


def test_a_sentinel_client_reads_writes_and_status_names_the_primary(replicated: Replicated) -> None:
    client = redis_client(replicated.settings())
    try:
        client.set("ha:key", "value")
        assert client.get("ha:key") == b"value"
        shown = status(replicated.settings(), client, None)
        assert shown["redis_primary"].startswith(f"127.0.0.1:{replicated.primary.port} ")
        assert "mymaster" in shown["redis_primary"]
        assert (shown["redis_role"], shown["redis_replicas"]) == ("master", 1)
    finally:
        client.close()


def test_the_same_clients_follow_the_new_primary_after_a_failover(replicated: Replicated) -> None:
    client = redis_client(replicated.settings())

    def writes() -> bool:
        client.set("ha:after", "2")
        return client.get("ha:after") == b"2"

    async def scenario() -> float:
        aclient = async_redis_client(replicated.settings())  # one event loop for its whole life
        try:
            client.set("ha:before", "1")
            await aclient.set("ha:async", "before")
            assert client.wait(1, 1000) == 1  # replication is asynchronous: WAIT makes it sure
            replicated.primary.kill()  # SIGKILL: no goodbye to the replica nor the sentinels
            started = time.monotonic()
            wait_until(writes, FOLLOW_SECONDS, "the blocking client writes to the new primary")
            followed = time.monotonic() - started
            deadline = time.monotonic() + FOLLOW_SECONDS
            while True:
                try:
                    await aclient.set("ha:async", "after")
                    break
                except RedisError:
                    assert time.monotonic() < deadline, "the asyncio client did not follow"
                    await asyncio.sleep(0.1)
            assert await aclient.get("ha:async") == b"after"
            return followed
        finally:
            await aclient.aclose()

    try:
        followed = asyncio.run(scenario())
        assert replicated.master_port() == replicated.replica.port
        assert client.get("ha:before") == b"1"  # acknowledged by the replica before the kill
        assert topology(client)["redis_primary"].startswith(f"127.0.0.1:{replicated.replica.port} ")
        assert followed < FOLLOW_SECONDS
    finally:
        client.close()


def test_rq_enqueues_and_a_simple_worker_runs_through_a_sentinel_client(replicated: Replicated) -> None:
    client = redis_client(replicated.settings())
    try:
        queue = Queue("ha", connection=client, serializer=JSONSerializer)  # RQ's own job class: any function
        job = queue.enqueue("builtins.len", "four")
        # RQ raises the pool's socket timeout for its blocking dequeue, and its scheduler rebuilds a
        # connection from the pool's class and arguments: both must work on a Sentinel pool.
        worker_ = SimpleWorker([queue], connection=client, serializer=JSONSerializer)
        assert worker_.work(burst=True, with_scheduler=True)
        job.refresh()  # type: ignore[no-untyped-call]
        assert job.is_finished
        assert job.return_value() == 4
    finally:
        client.close()


def test_a_forking_worker_is_refused_on_a_sentinel_url(replicated: Replicated) -> None:
    settings = replicated.settings(worker_class=WorkerClass.FORK)
    with pytest.raises(ConfigError, match="CUBEHOOK_WORKER_CLASS"):
        worker.refuse_unsupported(settings, redis_client(settings))
