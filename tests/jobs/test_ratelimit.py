"""The fleet-wide limiter spaces requests by 1/rate across clients sharing a Redis."""

from __future__ import annotations

import threading

import pytest
from redis import Redis

from workers.ratelimit import RateLimiter


def test_requests_are_spaced_across_limiters(redis: Redis) -> None:
    rate = 20.0
    limiters = [RateLimiter(redis, rate) for _ in range(2)]  # two "workers"
    waits: list[float] = []
    lock = threading.Lock()

    def run(limiter: RateLimiter) -> None:
        for _ in range(5):
            waited = limiter.acquire()
            with lock:
                waits.append(waited)

    threads = [threading.Thread(target=run, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Ten grants at 20/s: all but the first were told to wait, together at least 9 intervals' worth.
    assert len(waits) == 10
    assert sum(1 for w in waits if w > 0) >= 9
    assert sum(waits) >= 9 / rate * 0.9


def test_the_first_request_goes_at_once(redis: Redis) -> None:
    assert RateLimiter(redis, 5.0).acquire() == 0.0


def test_rate_must_be_positive(redis: Redis) -> None:
    with pytest.raises(ValueError, match="rate_per_second"):
        RateLimiter(redis, 0)
