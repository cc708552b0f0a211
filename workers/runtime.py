"""What a worker process builds once and its jobs share: settings, Redis, the ComplyCube client
(one connection pool, one fleet-wide rate limiter), the session store and the processor.

The entry point (`cubehook worker`) builds it and installs it; a job run by any other worker (say
a plain `rq worker`) builds it from the environment on first use.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx2
from redis import Redis
from rq import Queue

from service.queue import redis_client
from service.settings import Settings, load_settings
from workers.complycube import ComplyCubeClient
from workers.pipeline import SessionProcessor
from workers.ratelimit import RateLimiter
from workers.state import SessionStore


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    client: ComplyCubeClient
    store: SessionStore
    processor: SessionProcessor
    executor: ThreadPoolExecutor

    @classmethod
    def build(cls, settings: Settings, transport: httpx2.BaseTransport | None = None) -> Runtime:
        redis = redis_client(settings)
        limiter = (
            RateLimiter(redis, settings.complycube_rate_limit) if settings.complycube_rate_limit else None
        )
        client = ComplyCubeClient.from_settings(settings, limiter, transport)
        store = SessionStore(redis, settings.session_lock_seconds)
        # Checks of one session are fetched at once; sessions with more checks than this are rare.
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cubehook-fetch")
        queue = Queue(settings.queue_name, connection=redis)
        processor = SessionProcessor(client, store, queue, settings.pending_recheck_intervals, executor)
        return cls(settings, redis, client, store, processor, executor)

    def close(self) -> None:
        self.executor.shutdown(wait=False)
        self.client.close()
        self.redis.close()


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current  # one runtime per worker process, set by its entry point
    _current = runtime


def current() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime.build(load_settings())
    return _current
