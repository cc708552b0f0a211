"""A rate limit shared by every worker through Redis, so the fleet stays under ComplyCube's limit
(10 requests/s on live keys, 5/s on sandbox keys: https://docs.complycube.com/api-reference).

GCRA (the generic cell rate algorithm) in one Lua script: Redis keeps the "theoretical arrival
time" of the next allowed request, and every caller, on any machine, is spaced by 1/rate against
Redis's own clock. A caller that is early is told how long to wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis

# KEYS[1]: the limiter key. ARGV[1]: interval between requests in microseconds.
# Returns 0 when the caller may go now, else the microseconds to wait before asking again.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > 0 then return tat - now end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(interval / 1000) + 1000)
return 0
"""


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        rate_per_second: float,
        key: str = "cubehook:ratelimit:complycube",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be > 0")
        self._script = redis.register_script(_GCRA)
        self._key = key
        self._interval_us = int(1_000_000 / rate_per_second)
        self._sleep = sleep

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds waited."""
        waited = 0.0
        while True:
            wait_us = int(self._script(keys=[self._key], args=[self._interval_us]))
            if wait_us <= 0:
                return waited
            self._sleep(wait_us / 1_000_000)
            waited += wait_us / 1_000_000
