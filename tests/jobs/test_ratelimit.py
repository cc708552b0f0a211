"""The fleet-wide limiter spaces requests by 1/rate across clients sharing a Redis, and a 429 pauses
it for every client."""

from __future__ import annotations

import threading

import httpx2
import pytest
from pydantic import SecretStr
from redis import Redis

from service.errors import UpstreamRateLimited
from workers.complycube.client import ComplyCubeClient
from workers.complycube.ratelimit import FleetPaused, RateLimiter


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


def test_a_pause_holds_every_limiter_back_and_is_never_shortened(redis: Redis) -> None:
    first, other = RateLimiter(redis, 5.0), RateLimiter(redis, 5.0)  # two workers
    first.pause(30)
    first.pause(1)  # a shorter Retry-After later does not bring the next request forward
    with pytest.raises(FleetPaused) as caught:
        other.acquire(max_wait=5)
    assert 29 < caught.value.wait <= 30


def test_a_429_pauses_the_fleet_and_the_other_workers_do_not_wait_it_out(redis: Redis) -> None:
    def answer(status: int, headers: dict[str, str] | None = None) -> httpx2.MockTransport:
        def handler(request: httpx2.Request) -> httpx2.Response:
            sent.append(request)
            return httpx2.Response(status, headers=headers)

        return httpx2.MockTransport(handler)

    def worker(transport: httpx2.MockTransport) -> ComplyCubeClient:
        key = SecretStr("test_k")
        return ComplyCubeClient("https://api.example.test/v1", key, limiter=RateLimiter(redis, 5.0),
                                budget_seconds=10, transport=transport, sleep=lambda _: None)  # fmt: skip

    sent: list[httpx2.Request] = []
    with pytest.raises(UpstreamRateLimited) as first:
        worker(answer(429, {"Retry-After": "30"})).get_session("s1")
    assert first.value.retry_after == 30.0
    sent.clear()
    with pytest.raises(UpstreamRateLimited) as other:
        worker(answer(200)).get_session("s2")  # another worker, within ComplyCube's 30 s
    assert sent == []  # it sent nothing, and was told to come back when the pause is over
    assert other.value.retry_after is not None
    assert 29 < other.value.retry_after <= 30
