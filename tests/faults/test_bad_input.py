"""Hostile input, generated: never a 5xx, never a job for a request without a valid signature, a
signed body that cannot be read kept (2xx quarantined), and an API answer that does not parse is a
clear, retried error, never a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from redis import Redis
from starlette.testclient import TestClient

from service.errors import UpstreamMalformed
from service.rq_jobs import rq_queue
from service.settings import Settings
from service.web.app import create_app
from tests.conftest import SECRET, event_body, signature
from workers.complycube.client import ComplyCubeClient

URL = "/webhooks/complycube"
ANSWERS = {200, 202, 401, 413}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(redis_url=redis_url, webhook_secrets=SECRET, max_body_bytes=4096))
    with TestClient(app) as test_client:
        yield test_client


def jobs(redis: Redis) -> int:
    return rq_queue("cubehook", redis).count


@FUZZ
@given(
    body=st.binary(max_size=6000),
    header=st.one_of(
        st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80), st.just("0" * 64)
    ),
)
def test_unsigned_garbage_never_queues_and_never_5xx(
    client: TestClient, redis: Redis, body: bytes, header: str | None
) -> None:
    # Header values go as bytes: any octet a client could send, not only ASCII.
    headers = {} if header is None else {b"ComplyCube-Signature": header.encode("latin-1")}
    before = jobs(redis)
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code in {401, 413}
    assert jobs(redis) == before


@FUZZ
@given(document=json_values)
def test_signed_json_of_any_shape_is_answered_cleanly(
    client: TestClient, redis: Redis, document: Any
) -> None:
    body = json.dumps(document).encode()
    response = client.post(URL, content=body, headers=signature(body))
    assert response.status_code in ANSWERS
    unreadable = not isinstance(document, dict) or not isinstance(document.get("id"), str)
    if response.status_code != 413 and unreadable:
        assert response.json()["status"] == "quarantined"


@FUZZ
@given(
    event_id=st.text(min_size=1, max_size=300),
    event_type=st.text(min_size=1, max_size=40),
    resource_type=st.sampled_from(["workflowSession", "check", "client", "x"]),
)
def test_signed_events_with_odd_fields(
    client: TestClient, redis: Redis, event_id: str, event_type: str, resource_type: str
) -> None:
    body = event_body(event_id=event_id, event_type=event_type, resource_type=resource_type)
    response = client.post(URL, content=body, headers=signature(body))
    assert response.status_code in ANSWERS
    if len(event_id) > 256:
        assert response.json()["status"] == "quarantined"


def test_deep_nesting_and_invalid_utf8_are_quarantined(client: TestClient) -> None:
    for body in (b"[" * 2000 + b"]" * 2000, b'{"id": "\xc3\x28"}', b"\xef\xbb\xbf{}"):
        response = client.post(URL, content=body, headers=signature(body))
        assert (response.status_code, response.json()["status"]) == (202, "quarantined")


def test_repeated_signature_headers_do_not_confuse_the_check(client: TestClient, redis: Redis) -> None:
    body = event_body(event_id="repeat-1")
    good = signature(body)["ComplyCube-Signature"]
    response = client.post(
        URL, content=body, headers=[("ComplyCube-Signature", "0" * 64), ("ComplyCube-Signature", good)]
    )
    assert response.status_code in {202, 401}  # Starlette reads the first; never a 5xx


@FUZZ
@given(document=json_values)
def test_api_answers_that_do_not_parse_are_a_clear_retried_error(document: Any) -> None:
    transport = httpx2.MockTransport(lambda _request: httpx2.Response(200, json=document))
    api = ComplyCubeClient("https://api.example.test/v1", SecretStr("test_k"), transport=transport)
    readable = isinstance(document, dict) and isinstance(document.get("id"), str) and document["id"] != ""
    if readable:
        assert api.get_session("s1").raw == document
    else:
        with pytest.raises(UpstreamMalformed, match="unreadable answer"):
            api.get_session("s1")
