"""Concurrent calls of one Lua script, sent together.

Each request used to take a connection of its own from the pool and make its own round trip, so
at 50 requests in flight Redis read 50 sockets and the web process made 50 writes and 50 reads.
Here the calls made while a batch is on its way wait for it to come back and then leave together,
as one pipeline on one connection: no timer and no added delay when the server is idle (a lone
call leaves at once), fewer system calls on both sides when it is busy. Each call still gets its
own answer or its own error; a failure of the connection fails every call of that batch, and
each caller answers 503 as before.

With a ReplicaWait, the pipeline ends with ``WAIT N timeout`` on the same connection: Redis's WAIT
covers every write that connection made before it (https://redis.io/docs/latest/commands/wait/),
so one WAIT vouches for the whole batch in the same round trip. Fewer than N replicas: every call
of the batch fails with QueueUnavailable (service.redis.ReplicaWait says why that is safe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from service.evalsha import ScriptsMissing, sha1
from service.redis import ReplicaWait


class ScriptBatcher:
    def __init__(
        self, client: Redis, script: str, replicas: ReplicaWait | None = None, *, loads: bool = True
    ) -> None:
        self.client = client
        self.script = script
        self.replicas = replicas
        self.sha = sha1(script)
        self.loads = loads  # False: run by SHA only (service.evalsha), a missing script is an error
        self._waiting: list[tuple[Sequence[str], Sequence[EncodableT], asyncio.Future[Any]]] = []
        self._sending = False

    async def call(self, keys: Sequence[str], args: Sequence[EncodableT]) -> Any:  # noqa: ANN401 - the script's answer
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, future))
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    answers = await self._send(batch)
                except Exception as exc:
                    answers = [exc] * len(batch)
                for (_keys, _args, future), answer in zip(batch, answers, strict=True):
                    if future.done():  # the caller went away (its client disconnected)
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._sending = False

    async def _send(self, batch: list[tuple[Sequence[str], Sequence[EncodableT], Any]]) -> list[Any]:
        needed = await self.replicas.needed() if self.replicas else 0
        answers = await self._pipeline(batch, needed)
        if any(isinstance(a, NoScriptError) for a in answers):  # a restarted or flushed Redis
            if not self.loads:
                return [ScriptsMissing(self.sha)] * len(batch)
            await self.client.script_load(self.script)
            answers = await self._pipeline(batch, needed)
        if not (needed and self.replicas):
            return answers
        failed = self.replicas.shortfall(answers.pop(), needed)  # WAIT's answer, last
        if failed is None:
            return answers
        return [a if isinstance(a, BaseException) else failed for a in answers]

    async def _pipeline(
        self, batch: list[tuple[Sequence[str], Sequence[EncodableT], Any]], needed: int
    ) -> list[Any]:
        """Each call's answer (or error), then WAIT's when ``needed``."""
        async with self.client.pipeline(transaction=False) as pipe:
            for keys, args, _future in batch:
                pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
            if needed and self.replicas:
                pipe.execute_command("WAIT", needed, self.replicas.timeout_ms)
            return list(await pipe.execute(raise_on_error=False))
