"""ComplyCubeClient against httpx.MockTransport: the one place answers become errors."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import httpx2
import pytest
from pydantic import SecretStr

from service.complycube_models import WorkflowSession
from service.errors import (
    InvalidId,
    UpstreamMalformed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tests.conftest import FIXTURES
from workers.complycube.client import ComplyCubeClient

SESSION = json.loads((FIXTURES / "workflow-session-complete.json").read_text())
Handler = Callable[[httpx2.Request], httpx2.Response]


class Script:
    """Answers in order; records requests and the sleeps the client asked for."""

    def __init__(self, *answers: httpx2.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []
        self.sleeps: list[float] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **options: object) -> ComplyCubeClient:
        return ComplyCubeClient(
            "https://api.example.test/v1",
            SecretStr("test_key123"),
            transport=httpx2.MockTransport(self.handler),
            sleep=self.sleeps.append,
            rng=random.Random(1),
            **options,  # type: ignore[arg-type]
        )


def ok(body: object = SESSION) -> httpx2.Response:
    return httpx2.Response(200, json=body)


def test_sends_the_raw_key_and_keeps_the_raw_json() -> None:
    script = Script(ok())
    fetched = script.client().get_session("5eb2b61e02df0a0008f1cf2a")
    request = script.requests[0]
    assert request.headers["authorization"] == "test_key123"
    assert str(request.url) == "https://api.example.test/v1/workflowSessions/5eb2b61e02df0a0008f1cf2a"
    assert fetched.model.outcome == "clear"
    assert fetched.raw == SESSION


def test_429_with_retry_after_is_honoured() -> None:
    script = Script(httpx2.Response(429, headers={"Retry-After": "3"}), ok())
    assert script.client().get_session("s").model.id == SESSION["id"]
    assert script.sleeps == [3.0]


def test_429_without_retry_after_backs_off_with_jitter() -> None:
    script = Script(httpx2.Response(429), httpx2.Response(429), httpx2.Response(429), ok())
    script.client(budget_seconds=60).get_session("s")
    assert len(script.sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(script.sleeps, (0.5, 1.0, 2.0), strict=True))
    assert len(set(script.sleeps)) == 3


def test_500_then_success() -> None:
    script = Script(httpx2.Response(500), httpx2.Response(503), ok())
    assert script.client().get_session("s").model.status == "complete"
    assert len(script.requests) == 3


def test_timeouts_are_retried_then_reported_transient() -> None:
    timeout = httpx2.ReadTimeout("slow")
    script = Script(timeout, timeout, timeout)
    with pytest.raises(UpstreamUnavailable, match="ReadTimeout"):
        script.client(max_attempts=3).get_session("s")
    assert len(script.requests) == 3


def test_the_retry_budget_bounds_the_waiting() -> None:
    script = Script(httpx2.Response(429, headers={"Retry-After": "30"}), ok())
    with pytest.raises(UpstreamRateLimited) as caught:
        script.client(budget_seconds=10).get_session("s")
    assert caught.value.status == 429
    assert caught.value.retry_after == 30.0  # the job is put back for when ComplyCube said
    assert script.sleeps == []
    assert len(script.requests) == 1


def test_429s_beyond_the_attempts_say_rate_limited_without_retry_after() -> None:
    script = Script(httpx2.Response(429), httpx2.Response(429))
    with pytest.raises(UpstreamRateLimited) as caught:
        script.client(max_attempts=2).get_session("s")
    assert caught.value.retry_after is None
    assert len(script.sleeps) == 1


def test_5xx_beyond_the_attempts_are_unavailable_not_rate_limited() -> None:
    script = Script(httpx2.Response(429), httpx2.Response(503))
    with pytest.raises(UpstreamUnavailable) as caught:
        script.client(max_attempts=2).get_session("s")
    assert not isinstance(caught.value, UpstreamRateLimited)
    assert caught.value.status == 503


def test_404_is_permanent_not_found() -> None:
    script = Script(httpx2.Response(404, json={"type": "resource_not_found", "message": "nope"}))
    with pytest.raises(UpstreamNotFound):
        script.client().get_check("c")
    assert len(script.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 422])
def test_other_4xx_are_permanent(status: int) -> None:
    script = Script(httpx2.Response(status, json={"type": "x"}))
    with pytest.raises(UpstreamRejected) as caught:
        script.client().get_session("s")
    assert caught.value.status == status
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx2.Response(200, text="<html>"),
        httpx2.Response(200, json=[1]),
        httpx2.Response(200, json={"no": "id"}),
    ],
    ids=["not-json", "not-object", "no-id"],
)
def test_unreadable_answers_are_transient_malformed(answer: httpx2.Response) -> None:
    with pytest.raises(UpstreamMalformed):
        Script(answer).client().get_session("s")


def test_http_date_retry_after() -> None:
    script = Script(httpx2.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), ok())
    script.client().get_session("s")
    assert script.sleeps == [0.0]  # a date in the past: go at once


# Not ComplyCube ids (service.ids): each would leave its path segment, add a query, or break the request.
BAD_IDS = ["../clients/cl1", "x?pageSize=1&clientId=zzz", "cl1\x00", "..", "", "cl%2F1", "a" * 65, "é"]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("call", ["get_session", "get_check", "get_client", "enable_webhook"])
def test_an_id_that_is_not_a_complycube_id_is_never_requested(call: str, bad: str) -> None:
    script = Script(ok())  # one answer, should a request be made
    with pytest.raises(InvalidId, match=r"id: not a ComplyCube id \(1-64 letters, digits, _ or -\)"):
        getattr(script.client(), call)(bad)
    assert script.requests == []


def test_ids_go_into_the_path_as_one_segment() -> None:
    script = Script(ok(), ok({"id": "wh_1-A", "url": "https://x.example/hook"}))
    script.client().get_session("5eb2b61e02df0a0008f1cf2a")
    script.client().enable_webhook("wh_1-A")
    assert [(r.method, r.url.raw_path) for r in script.requests] == [
        ("GET", b"/v1/workflowSessions/5eb2b61e02df0a0008f1cf2a"),
        ("POST", b"/v1/webhooks/wh_1-A"),
    ]


def test_a_sessions_ids_that_are_not_complycube_ids_are_never_requested() -> None:
    check = json.loads((FIXTURES / "check-document-rejected.json").read_text())
    listed = [{"checkId": check["id"]}, {"checkId": "../clients/cl1"}, {"checkId": "x?pageSize=1"}]
    # A client id that is not one: no listing by it; the one good check is fetched alone.
    session = WorkflowSession.model_validate({**SESSION, "clientId": "../x", "allRelatedChecks": listed})
    script = Script(ok(check))
    found = script.client().session_checks(session)
    assert [r.url.raw_path for r in script.requests] == [f"/v1/checks/{check['id']}".encode()]
    assert list(found) == [check["id"], "../clients/cl1", "x?pageSize=1"]
    assert found["../clients/cl1"] is None
    assert found["x?pageSize=1"] is None
