"""Answers are read with a bound: ComplyCube's through the client, action targets' by the senders."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx2
import pytest
from pydantic import SecretStr

from service.errors import ActionFailed, UpstreamMalformed
from workers.actions.base import post
from workers.complycube.bounded_reads import COMPLYCUBE_ANSWER_MAX_BYTES, bounded_request
from workers.complycube.client import ComplyCubeClient

CHUNK = 16 * 1024


class Endless:
    """An answer body that never ends unless asked to; counts what was pulled from it."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self.pulled += 1
            yield b"x" * CHUNK


def client_for(handler: httpx2.MockTransport) -> httpx2.Client:
    return httpx2.Client(transport=handler, base_url="https://api.example")


def test_an_answer_within_the_bound_comes_back_whole() -> None:
    transport = httpx2.MockTransport(lambda r: httpx2.Response(200, json={"id": "s1"}, headers={"x-a": "1"}))
    with client_for(transport) as client:
        response = bounded_request(client, "GET", "/s", 1024, UpstreamMalformed)
    assert (response.status_code, response.json(), response.headers["x-a"]) == (200, {"id": "s1"}, "1")


def test_an_endless_answer_is_cut_at_the_bound_not_read_to_its_end() -> None:
    body = Endless()
    transport = httpx2.MockTransport(lambda r: httpx2.Response(200, content=body))
    with (
        client_for(transport) as client,
        pytest.raises(UpstreamMalformed, match=r"GET /s: answer longer") as caught,
    ):
        bounded_request(client, "GET", "/s", 64 * 1024, UpstreamMalformed)
    assert caught.value.status == 200
    assert body.pulled == 64 * 1024 // CHUNK + 1  # the first chunk past the bound, and no more


def test_a_declared_length_over_the_bound_is_not_read_at_all() -> None:
    body = Endless()
    transport = httpx2.MockTransport(
        lambda r: httpx2.Response(200, content=body, headers={"content-length": str(10**9)})
    )
    with client_for(transport) as client, pytest.raises(UpstreamMalformed):
        bounded_request(client, "GET", "/s", 1024, UpstreamMalformed)
    assert body.pulled == 0


def test_the_bound_is_on_the_decoded_body_so_compression_cannot_inflate_past_it() -> None:
    small = gzip.compress(json.dumps({"pad": "0" * 10_000}).encode())
    assert len(small) < 1024
    transport = httpx2.MockTransport(
        lambda r: httpx2.Response(200, content=small, headers={"content-encoding": "gzip"})
    )
    with client_for(transport) as client:
        with pytest.raises(UpstreamMalformed):
            bounded_request(client, "GET", "/s", 1024, UpstreamMalformed)
        decoded = bounded_request(client, "GET", "/s", 20_000, UpstreamMalformed)
    assert decoded.json() == {"pad": "0" * 10_000}  # decoded once, not twice


def test_complycube_answers_over_the_bound_are_a_transient_error() -> None:
    calls = []

    def huge(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.url.path)
        return httpx2.Response(200, content=b" " * (COMPLYCUBE_ANSWER_MAX_BYTES + 1))

    client = ComplyCubeClient(
        "https://api.example/v1", SecretStr("test_k"), transport=httpx2.MockTransport(huge)
    )
    with pytest.raises(UpstreamMalformed, match="answer longer than") as caught:
        client.get_session("s1")
    assert caught.value.status == 200
    assert calls == ["/v1/workflowSessions/s1"]  # not retried within the job: RQ retries it later
    client.close()


@pytest.mark.parametrize(("status", "expected"), [(200, "target answered 200"), (503, None)])
def test_an_action_target_is_judged_by_its_status_and_its_body_read_only_to_the_bound(
    status: int, expected: str | None
) -> None:
    body = Endless()
    with httpx2.Client(
        transport=httpx2.MockTransport(lambda r: httpx2.Response(status, content=body))
    ) as http:
        if expected is None:
            with pytest.raises(ActionFailed, match="target answered 503"):
                post(http, "https://hooks.example/d", "target", 5.0, json={})
        else:
            assert post(http, "https://hooks.example/d", "target", 5.0, json={}) == expected
    assert body.pulled == 64 * 1024 // CHUNK + 1
