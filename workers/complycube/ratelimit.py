"""A rate limit shared by every worker through Redis, so the fleet stays under ComplyCube's limit
(10 requests/s on live keys, 5/s on sandbox keys: https://docs.complycube.com/api-reference).

GCRA (the generic cell rate algorithm) in one Lua script: Redis keeps the "theoretical arrival
time" of the next allowed request, and every caller, on any machine, is spaced by 1/rate against
Redis's own clock. A caller that is early is told how long to wait.

A 429 pauses the whole fleet, not just the worker that met it: ``pause`` pushes that time to the
end of the wait ComplyCube asked for (its ``Retry-After``), so every worker holds back. A caller
that may not wait that long (``max_wait``, the job's retry budget) is told so instead of blocking,
and its job is rescheduled for when the pause is over.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from redis import Redis

from service import keys, scripts


class FleetPaused(Exception):
    """The next request may go only after ``wait`` seconds: longer than the caller may wait."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"ComplyCube requests paused for {wait:.1f} s")
        self.wait = wait


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        rate_per_second: float,
        key: str = keys.RATE_LIMIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be > 0")
        self._script = redis.register_script(scripts.GCRA)
        self._pause = redis.register_script(scripts.PAUSE)
        self._key = key
        self._interval_us = int(1_000_000 / rate_per_second)
        self._sleep = sleep

    def acquire(self, max_wait: float = math.inf) -> float:
        """Block until a request may be sent; return the seconds waited. Raises FleetPaused,
        without waiting, when that would take more than ``max_wait`` seconds in all."""
        waited = 0.0
        while True:
            wait_us = int(self._script(keys=[self._key], args=[self._interval_us]))
            if wait_us <= 0:
                return waited
            wait = wait_us / 1_000_000
            if waited + wait > max_wait:
                raise FleetPaused(wait)
            self._sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """No request from any worker before ``seconds`` from now (a 429's ``Retry-After``)."""
        if seconds > 0:
            self._pause(keys=[self._key], args=[int(seconds * 1_000_000)])
