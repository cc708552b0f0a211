"""ScriptBatcher on a real Redis (flushed for each test by the redis_url fixture): concurrent calls
share round trips, each gets its own answer."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from service.batching import ScriptBatcher

# Sets the key if absent; answers the key's value times two, or errors on a non-number.
SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return tonumber(redis.call('GET', KEYS[1])) * 2
"""


def test_concurrent_calls_share_pipelines_and_get_their_own_answers(redis_url: str) -> None:
    async def run() -> tuple[list[object], int]:
        client = AsyncRedis.from_url(redis_url)
        batcher = ScriptBatcher(client, SCRIPT)
        sent = []
        original = batcher._pipeline

        async def counting(batch: list[object], needed: int) -> list[object]:
            sent.append(len(batch))
            return await original(batch, needed)  # type: ignore[arg-type]

        batcher._pipeline = counting  # type: ignore[method-assign,assignment]
        answers = await asyncio.gather(
            *(batcher.call([f"batch:{n}"], [n]) for n in range(200)),
            batcher.call(["batch:text"], ["not a number"]),
            return_exceptions=True,
        )
        await client.aclose()
        return answers, len(sent)

    answers, pipelines = asyncio.run(run())
    assert answers[:200] == [n * 2 for n in range(200)]
    assert isinstance(answers[200], ResponseError)  # one caller's error is its own
    assert pipelines < 20  # 201 calls, a few round trips (the first alone, then the rest together)


def test_a_flushed_script_cache_is_refilled(redis_url: str) -> None:
    async def run() -> object:
        client = AsyncRedis.from_url(redis_url)
        await client.script_flush()  # a restarted Redis knows no script
        answer = await ScriptBatcher(client, SCRIPT).call(["batch:flushed"], [21])
        await client.aclose()
        return answer

    assert asyncio.run(run()) == 42


def test_a_broken_connection_fails_every_call_of_the_batch() -> None:
    async def run() -> list[object]:
        client = AsyncRedis(port=1, socket_connect_timeout=1)  # nothing listens there
        batcher = ScriptBatcher(client, SCRIPT)
        answers = await asyncio.gather(
            *(batcher.call([f"k{n}"], [n]) for n in range(5)), return_exceptions=True
        )
        await client.aclose()
        return answers

    answers = asyncio.run(run())
    assert all(isinstance(a, RedisConnectionError) for a in answers)


def test_a_caller_that_went_away_does_not_stop_the_others(redis_url: str) -> None:
    async def run() -> list[object]:
        client = AsyncRedis.from_url(redis_url)
        batcher = ScriptBatcher(client, SCRIPT)
        gone = asyncio.ensure_future(batcher.call(["batch:gone"], [1]))
        kept = asyncio.ensure_future(batcher.call(["batch:kept"], [2]))
        await asyncio.sleep(0)
        gone.cancel()
        answers = await asyncio.gather(gone, kept, return_exceptions=True)
        await client.aclose()
        return list(answers)

    gone, kept = asyncio.run(run())
    assert isinstance(gone, asyncio.CancelledError)
    assert kept == 4
