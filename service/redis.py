"""The Redis clients every process uses (web, workers, RQ, console, CLI), built from
CUBEHOOK_REDIS_URL (service.redis_url reads it; docs/redis.md shows the forms), and what the
intake asks of replication.

One server (``redis://``, ``rediss://``): redis-py's ``from_url``. Sentinels
(``redis+sentinel://``, ``rediss+sentinel://``): redis-py's ``Sentinel(...).master_for(service)``,
whose pool asks the sentinels for the primary's address at each new connection, so a client
follows a failover without a restart: a connection to a primary that died fails (ConnectionError)
and the next one goes where the sentinels now point; a connection to a primary demoted to replica
answers READONLY to a write, which redis-py's SentinelManagedConnection turns into ConnectionError
("The previous master is now a slave") and drops (redis-py, redis/sentinel.py). Either way the
caller sees one RedisError, as in an outage: the intake answers 503 and ComplyCube retries.

Every client has bounded timeouts, so an outage is noticed in seconds, not minutes.

``ReplicaWait``: how many replicas must hold an accepted event before the intake answers 2xx
(Redis's WAIT; service.batching sends it). See its docstring for what that guarantees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.exceptions import RedisError, ResponseError
from redis.sentinel import Sentinel, SentinelConnectionPool

from service.errors import ConfigError, QueueUnavailable
from service.metrics import WAIT_SHORTFALLS
from service.redis_url import SentinelTarget, invalid, parse_redis_url
from service.settings import Settings

HEALTH_CHECK_SECONDS = 30  # a connection idle this long is PINGed before it is used again
REPLICAS_REFRESH_SECONDS = 5.0  # how often ``auto`` reads the primary's count of replicas
STALE_REREAD_SECONDS = 0.5  # after a shortfall, read them again at once, but at most this often


def _timeouts(settings: Settings) -> dict[str, Any]:
    return {
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "health_check_interval": HEALTH_CHECK_SECONDS,
    }


def _sentinel_arguments(target: SentinelTarget, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword arguments of the data nodes' connections and of the sentinels' ones."""
    tls = dict(target.tls_options)
    nodes: dict[str, Any] = {**_timeouts(settings), "db": target.db}
    nodes.update(username=target.username, password=target.password)
    if target.tls:
        nodes.update(ssl=True, **tls)
    # Given explicitly: without sentinel_kwargs, redis-py's Sentinel gives the sentinels only the
    # socket_* options of the nodes (redis/sentinel.py), never their password nor TLS.
    sentinels: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "username": target.sentinel_username,
        "password": target.sentinel_password,
    }
    if target.sentinel_tls:
        sentinels.update(ssl=True, **tls)
    return nodes, sentinels


def redis_client(settings: Settings) -> Redis:
    """The blocking client (workers, RQ, console, CLI, the web side's admin reads). Raises
    ConfigError when CUBEHOOK_REDIS_URL is malformed. Connects lazily."""
    target = parse_redis_url(settings.redis_url)
    if isinstance(target, SentinelTarget):
        nodes, sentinels = _sentinel_arguments(target, settings)
        manager = Sentinel(list(target.sentinels), sentinel_kwargs=sentinels)  # type: ignore[no-untyped-call]
        client: Redis = manager.master_for(target.service_name, redis_class=Redis, **nodes)  # type: ignore[no-untyped-call]
        return client
    try:
        return Redis.from_url(target, **_timeouts(settings))
    except ValueError as exc:  # redis-py's URL errors (a bad port, scheme, database)
        raise _unreadable(exc) from None


def async_redis_client(settings: Settings) -> AsyncRedis:
    """The web side's asyncio client, the same way."""
    target = parse_redis_url(settings.redis_url)
    if isinstance(target, SentinelTarget):
        nodes, sentinels = _sentinel_arguments(target, settings)
        manager = AsyncSentinel(list(target.sentinels), sentinel_kwargs=sentinels)  # type: ignore[no-untyped-call]
        client: AsyncRedis = manager.master_for(target.service_name, redis_class=AsyncRedis, **nodes)
        return client
    try:
        return AsyncRedis.from_url(target, **_timeouts(settings))
    except ValueError as exc:
        raise _unreadable(exc) from None


def _unreadable(exc: ValueError) -> ConfigError:
    # redis-py's messages quote the part it could not read, never the password; scrubbed anyway.
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = first if "@" not in first else "the URL could not be read"
    return invalid(text)


def is_sentinel_managed(client: Redis | AsyncRedis) -> bool:
    return hasattr(client.connection_pool, "sentinel_manager")


def topology(redis: Redis) -> dict[str, Any]:
    """Where the primary is (as the sentinels name it, for a sentinel URL; as configured, else),
    the role of the server this client reaches, and its count of connected replicas (INFO
    replication). Raises RedisError."""
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        host, port = pool.sentinel_manager.discover_master(pool.service_name)
        primary = f"{host}:{port} (sentinel service {pool.service_name})"
    else:
        where = pool.connection_kwargs
        primary = str(where.get("path") or f"{where.get('host', '127.0.0.1')}:{where.get('port', 6379)}")
    info = redis.info("replication")
    return {
        "redis_primary": primary,
        "redis_role": info.get("role", "unknown"),
        "redis_replicas": int(info.get("connected_slaves", 0)),
    }


class ReplicaWait:
    """How many replicas must acknowledge an accepted event before the intake answers 202 (or
    200 duplicate): the N of ``WAIT N timeout``, sent on the connection that ran the accept script,
    in the same pipeline (one round trip). WAIT blocks until every write that connection made
    before it has reached N replicas, or the timeout passes, and answers how many did
    (https://redis.io/docs/latest/commands/wait/). A duplicate's script writes too (it counts the
    copy), after the original's writes in the replication stream, so its WAIT covers the original.

    Fewer than N: QueueUnavailable, so the endpoint answers 503 and ComplyCube retries. The event
    stays seen on the primary. Its retry either reaches the same primary, answering 200 duplicate
    once the write has reached the replicas, or reaches a replica promoted without the write,
    where the event is accepted anew: never lost, never doubled (the job id is the event id, and
    the workers converge on the session's freshest state whichever copy runs). WAIT is not a
    consensus: a primary that fails after its replicas acknowledged loses nothing; one that fails
    before can only have answered 503 (https://redis.io/docs/latest/operate/oss_and_stack/
    management/replication/).

    ``auto`` (min_replicas None): N = 1 while the primary reports a replica in sync (INFO
    replication: a ``slaveN`` in state ``online``; one still loading the primary's snapshot, as an
    old primary rejoining after a failover does, cannot acknowledge yet), else 0; read at the first
    event and every few seconds after, never per request, and at once (at most twice a second)
    after a shortfall, so that a failover to a primary with no replica yet costs one refusal, not
    a refresh period of them. An integer is strict, whatever the primary reports.
    """

    def __init__(self, client: AsyncRedis, min_replicas: int | None, timeout_ms: int) -> None:
        self.client = client
        self.strict = min_replicas
        self.timeout_ms = timeout_ms
        self._replicas = 0
        self._read_at: float | None = None
        self._stale = False  # a shortfall was seen: read the replicas again before the next WAIT
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, client: AsyncRedis, settings: Settings) -> ReplicaWait:
        minimum = settings.redis_min_replicas
        return cls(client, None if minimum == "auto" else minimum, settings.redis_wait_timeout_ms)

    async def needed(self) -> int:
        """The N to WAIT for now (0: no WAIT)."""
        if self.strict is not None:
            return self.strict
        if self._read_at is None or (self._stale and time.monotonic() - self._read_at > STALE_REREAD_SECONDS):
            await self._read()
        elif time.monotonic() - self._read_at > REPLICAS_REFRESH_SECONDS and self._reading is None:
            self._reading = asyncio.get_running_loop().create_task(self._read())  # in the background
        return 1 if self._replicas >= 1 else 0

    def shortfall(self, acknowledged: object, needed: int) -> BaseException | None:
        """What WAIT's answer makes of the writes before it: None when enough replicas have them;
        the error (WAIT's own, or QueueUnavailable when too few acknowledged) otherwise."""
        if isinstance(acknowledged, BaseException):
            return acknowledged
        if isinstance(acknowledged, int) and acknowledged >= needed:
            return None
        WAIT_SHORTFALLS.inc()
        self._stale = self.strict is None
        return QueueUnavailable(
            f"WAIT: {acknowledged} of {needed} replicas acknowledged the write within {self.timeout_ms} ms"
        )

    async def _read(self) -> None:
        try:
            info = await self.client.info("replication")
            self._replicas = in_sync_replicas(info)
            self._stale = False
        except RedisError:
            pass  # keep the last count: the accept itself will meet the outage and answer 503
        finally:
            self._read_at = time.monotonic()
            self._reading = None


def in_sync_replicas(info: Mapping[str, Any]) -> int:
    """The replicas INFO replication lists in state ``online`` (redis-py parses each ``slaveN``
    line into a dict); a replica still syncing (``wait_bgsave``, ``send_bulk``) does not count."""
    replicas = [value for key, value in info.items() if key.startswith("slave") and key[5:].isdigit()]
    return sum(1 for value in replicas if isinstance(value, dict) and value.get("state") == "online")


async def exchange(connection: AbstractConnection, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` at once on ``connection`` and read every reply, raw (an error reply as its
    exception): for a sequence that must stay on one connection, as WAIT after a transaction. On
    any other failure the connection is dropped, so no unread reply can reach its next user."""
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        replies: list[Any] = []
        for _command in commands:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:  # read in full: the next reply follows
                replies.append(exc)
        return replies
    except BaseException:
        await connection.disconnect()
        raise
