"""Scripts run by their SHA-1 only (EVALSHA), for the web process, whose Redis user may neither run
a script's text (EVAL) nor load one (SCRIPT LOAD, FUNCTION LOAD) nor flush them
(deploy/redis/users.acl): a stolen web credential cannot run its own Lua on Redis.

The workers load every script the intake runs (workers/scriptload.py) as they start and on every
sweep (a Redis that restarted empty, or failed over to a replica, has none). Until one has, an
event gets 503 (``ScriptsMissing`` is a Redis error: the intake answers as for Redis away) and
ComplyCube retries it. Processes whose user may load scripts (workers, the console, commands) use
redis-py's scripts, which load themselves when missing: ``script(..., loads=True)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError, RedisError
from redis.typing import EncodableT

# What a script is called with; its answer.
SyncScript = Callable[..., Any]
AsyncScript = Callable[..., Awaitable[Any]]


class ScriptsMissing(RedisError):
    """Redis does not hold a script the intake runs; a worker loads them (workers/scriptload.py)."""

    def __init__(self, sha: str) -> None:
        super().__init__(
            f"script {sha[:12]} is not loaded in Redis: a worker loads the intake's scripts as it starts "
            "and every few seconds (is a worker running against this Redis?)"
        )


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


class Evalsha:
    """A script on the blocking client, run by its SHA-1 only."""

    def __init__(self, client: Redis, text: str) -> None:
        self.client, self.sha = client, sha1(text)

    def __call__(self, keys: Sequence[str] = (), args: Sequence[EncodableT] = ()) -> Any:  # noqa: ANN401
        try:
            return self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            raise ScriptsMissing(self.sha) from None


class AsyncEvalsha:
    """A script on the asyncio client, run by its SHA-1 only."""

    def __init__(self, client: AsyncRedis, text: str) -> None:
        self.client, self.sha = client, sha1(text)

    async def __call__(self, keys: Sequence[str] = (), args: Sequence[EncodableT] = ()) -> Any:  # noqa: ANN401
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            raise ScriptsMissing(self.sha) from None


def script(client: Redis, text: str, loads: bool) -> SyncScript:
    """The script on the blocking client: loading itself when missing (``loads``), or by SHA only."""
    return client.register_script(text) if loads else Evalsha(client, text)


def async_script(client: AsyncRedis, text: str, loads: bool) -> AsyncScript:
    """The script on the asyncio client: loading itself when missing (``loads``), or by SHA only."""
    return client.register_script(text) if loads else AsyncEvalsha(client, text)
