"""The endpoint's guards, each with its answer, against a real Redis."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Callable, Iterator

import httpx2
import pytest
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from service.errors import ConfigError
from service.quarantine import text
from service.queue import seen_key
from service.rq_jobs import JobFunction
from service.settings import Settings
from service.signature import sign
from service.web.app import create_app
from tests.conftest import OTHER_SECRET, SECRET, event_body, fixture_bytes, signature

URL = "/webhooks/complycube"
FIXTURE = fixture_bytes("event-workflow-session-completed.json")


def post(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> httpx2.Response:
    return client.post(URL, content=body, headers=signature(body) if headers is None else headers)


def assert_nothing_queued(queue: Queue, redis: Redis) -> None:
    assert queue.count == 0
    assert redis.keys("cubehook:seen:*") == []


def processing(queue: Queue) -> list[str]:
    """Ids of the jobs that will process an event."""
    return [job.id for job in queue.get_jobs() if job.func_name == JobFunction.PROCESS_EVENT]


def recorded(queue: Queue) -> list[str]:
    """Dispositions of the audit records queued for events that are not processed."""
    return [
        job.kwargs["disposition"] for job in queue.get_jobs() if job.func_name == JobFunction.RECORD_EVENT
    ]


def test_accepted_event_is_queued_with_identifiers_only(client: TestClient, queue: Queue) -> None:
    response = post(client, FIXTURE)
    assert response.status_code == 202
    assert response.json() == {
        "status": "accepted",
        "event_id": "68a0c2f1e4b0a1000812ab34",
        "job_id": "evt-68a0c2f1e4b0a1000812ab34",
    }
    assert queue.job_ids == ["evt-68a0c2f1e4b0a1000812ab34"]
    job = queue.fetch_job("evt-68a0c2f1e4b0a1000812ab34")
    assert job is not None
    assert job.func_name == JobFunction.PROCESS_EVENT
    assert list(job.args) == []  # JSON: no positional arguments
    assert job.kwargs == {
        "event_id": "68a0c2f1e4b0a1000812ab34",
        "event_type": "workflowSession.completed",
        "resource_type": "session",  # cubehook's name for it, whatever the spelling
        "resource_id": "5eb2b61e02df0a0008f1cf2a",
        "event_time": "2025-01-13T11:39:30.500Z",
    }
    assert job.retries_left == 5
    assert job.retry_intervals == [10, 60, 300, 900, 3600]


def test_seen_key_outlives_the_job_for_the_retention_window(
    client: TestClient, redis: Redis, settings: Settings
) -> None:
    post(client, FIXTURE)
    ttl = redis.ttl(seen_key("68a0c2f1e4b0a1000812ab34"))
    assert settings.dedup_retention_seconds - 5 < ttl <= settings.dedup_retention_seconds


def test_same_event_twice_is_queued_once(client: TestClient, queue: Queue) -> None:
    assert post(client, FIXTURE).status_code == 202
    second = post(client, FIXTURE)
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert len(processing(queue)) == 1
    assert recorded(queue) == ["duplicate"]


def test_duplicate_is_recognised_after_the_job_is_gone(client: TestClient, queue: Queue) -> None:
    post(client, FIXTURE)
    job = queue.fetch_job("evt-68a0c2f1e4b0a1000812ab34")
    assert job is not None
    job.delete()  # as RQ does once a finished job's result TTL runs out
    assert post(client, FIXTURE).json()["status"] == "duplicate"
    assert processing(queue) == []


def test_same_event_sent_concurrently_makes_one_job(settings: Settings, queue: Queue) -> None:
    app = create_app(settings)

    async def burst() -> list[int]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
            answers = await asyncio.gather(
                *(http.post(URL, content=FIXTURE, headers=signature(FIXTURE)) for _ in range(25))
            )
        return [a.status_code for a in answers]

    codes = asyncio.run(burst())
    assert sorted(codes) == [200] * 24 + [202]
    assert len(processing(queue)) == 1
    assert recorded(queue) == ["duplicate"]  # the copies are counted; the first is put on record


def test_distinct_events_for_one_session_are_each_queued(client: TestClient, queue: Queue) -> None:
    for n in range(3):
        assert post(client, event_body(event_id=f"evt{n}")).status_code == 202
    assert queue.count == 3


def test_rotation_two_secrets_either_valid(make_settings: Callable[..., Settings], queue: Queue) -> None:
    app = create_app(make_settings(webhook_secrets=f"{SECRET},{OTHER_SECRET}"))
    with TestClient(app) as client:
        first, second = event_body(event_id="a1"), event_body(event_id="a2")
        assert post(client, first, signature(first, SECRET)).status_code == 202
        assert post(client, second, signature(second, OTHER_SECRET)).status_code == 202
        third = event_body(event_id="a3")
        assert post(client, third, signature(third, "not-configured")).status_code == 401
    assert queue.count == 2


GOOD = sign(FIXTURE, SECRET.encode())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"ComplyCube-Signature": ""},
        {"ComplyCube-Signature": GOOD.upper()},
        {"ComplyCube-Signature": GOOD[:-2]},
        {"ComplyCube-Signature": GOOD + "ab"},
        {"ComplyCube-Signature": "g" * 64},
        {"ComplyCube-Signature": sign(FIXTURE, b"wrong-secret")},
        {"X-Other-Signature": GOOD},
    ],
    ids=["missing", "empty", "uppercase", "short", "long", "non-hex", "wrong-secret", "other-header"],
)
def test_bad_signatures_get_401_and_nothing_queued(
    client: TestClient, queue: Queue, redis: Redis, headers: dict[str, str]
) -> None:
    response = post(client, FIXTURE, headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_signature"}
    assert_nothing_queued(queue, redis)


def test_header_name_is_case_insensitive(client: TestClient) -> None:
    assert post(client, FIXTURE, {"complycube-signature": GOOD}).status_code == 202


def test_signature_over_reserialised_json_is_refused(client: TestClient, queue: Queue, redis: Redis) -> None:
    reserialised = json.dumps(json.loads(FIXTURE)).encode()
    assert reserialised != FIXTURE
    assert post(client, reserialised, {"ComplyCube-Signature": GOOD}).status_code == 401
    assert_nothing_queued(queue, redis)


def test_signature_is_checked_before_the_body_is_parsed(client: TestClient) -> None:
    # Garbage with a bad signature is a 401, not a 400: nothing unauthenticated is parsed.
    assert post(client, b"not json", {"ComplyCube-Signature": "0" * 64}).status_code == 401


@pytest.mark.parametrize(
    ("event_type", "resource_type"),
    [("check.completed.clear", "check"), ("check.complete.clear", "check"), ("check.updated", "check")],
)
def test_check_events_of_both_generations_are_queued(
    client: TestClient, queue: Queue, event_type: str, resource_type: str
) -> None:
    response = post(client, event_body(event_type=event_type, resource_type=resource_type, session_id="chk1"))
    assert response.status_code == 202
    job = queue.fetch_job(response.json()["job_id"])
    assert job is not None
    assert (job.kwargs["resource_type"], job.kwargs["resource_id"]) == ("check", "chk1")


@pytest.mark.parametrize(
    ("event_type", "resource_type"),
    [("client.created", "client"), ("document.updated", "document"), ("address.created", "address")],
)
def test_events_not_about_sessions_are_acknowledged_not_queued(
    client: TestClient, queue: Queue, redis: Redis, event_type: str, resource_type: str
) -> None:
    response = post(client, event_body(event_type=event_type, resource_type=resource_type))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert processing(queue) == []
    assert recorded(queue) == ["ignored"]
    assert len(redis.keys("cubehook:seen:*")) == 1  # de-duplicated like the others
    again = post(client, event_body(event_type=event_type, resource_type=resource_type))
    assert again.json()["status"] == "duplicate"
    post(client, event_body(event_type=event_type, resource_type=resource_type))
    assert recorded(queue) == ["ignored", "duplicate"]  # the copies: one record per replay window


def test_replays_cost_no_job_and_little_memory(client: TestClient, queue: Queue, redis: Redis) -> None:
    """The issue's target: 4,000 replays of one captured delivery of each kind (2,000 of a session
    event, 2,000 of an ignored type) add no job beyond the first and under 1 MB to Redis."""
    session_event = event_body(event_id="replayed-session")
    ignored_event = event_body(
        event_id="replayed-client", event_type="client.updated", resource_type="client"
    )
    for body in (session_event, ignored_event):
        assert post(client, body).status_code in (200, 202)
    jobs, memory = queue.count, int(redis.info("memory")["used_memory"])
    keys = redis.dbsize()
    for _ in range(2000):
        assert post(client, session_event).json()["status"] == "duplicate"
        assert post(client, ignored_event).json()["status"] == "duplicate"
    assert queue.count == jobs + 2  # the first copy of each put on record, nothing more
    assert redis.dbsize() <= keys + 5  # those two jobs, the two copy counters, the copies-by-type hash
    grown = int(redis.info("memory")["used_memory"]) - memory
    assert grown < 1024 * 1024, grown
    assert int(redis.get("cubehook:copies:evt-replayed-session") or 0) == 2000
    copies = {text(k): int(v) for k, v in redis.hgetall("cubehook:copies_by_type").items()}
    assert copies == {"workflowSession.completed": 2000, "client.updated": 2000}


def test_body_over_the_limit_with_content_length(
    make_settings: Callable[..., Settings], queue: Queue, redis: Redis
) -> None:
    with TestClient(create_app(make_settings(max_body_bytes=1000))) as client:
        body = b"{" + b" " * 1000 + b"}"
        response = post(client, body)
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert post(client, event_body()).status_code == 202  # under the limit still works
    assert queue.count == 1


def test_body_over_the_limit_without_content_length(
    make_settings: Callable[..., Settings], queue: Queue, redis: Redis
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 300

    with TestClient(create_app(make_settings(max_body_bytes=1000))) as client:
        response = client.post(URL, content=chunks(), headers=signature(b""))
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
    assert_nothing_queued(queue, redis)


def test_wrong_method_is_405(client: TestClient) -> None:
    assert client.get(URL).status_code == 405


def test_no_secret_no_app(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match="CUBEHOOK_WEBHOOK_SECRETS"):
        create_app(make_settings(webhook_secrets=""))


def test_logs_carry_no_secret_signature_or_personal_data(client: TestClient, log_output: io.StringIO) -> None:
    body = event_body(entityName="Johanna Doemeister", email="johanna@example.com", dob="1990-02-03")
    good = signature(body)["ComplyCube-Signature"]
    assert post(client, body).status_code == 202
    assert post(client, body).status_code == 200
    bad = sign(body, b"attacker")
    assert post(client, body, {"ComplyCube-Signature": bad}).status_code == 401
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    assert "webhook.accepted" in events
    assert "webhook.duplicate" in events
    assert {"event": "webhook.rejected", "reason": "mismatch"}.items() <= next(
        line for line in lines if line["event"] == "webhook.rejected"
    ).items()
    text = log_output.getvalue()
    for forbidden in (SECRET, good, bad, "Johanna", "Doemeister", "johanna@example.com", "1990-02-03"):
        assert forbidden not in text


def test_the_signature_header_is_read_with_its_surrounding_white_space_stripped(client: TestClient) -> None:
    body = event_body(event_id="padded")
    padded = {"ComplyCube-Signature": f"  {sign(body, SECRET.encode())}\t"}
    assert client.post(URL, content=body, headers=padded).status_code == 202


@pytest.mark.parametrize("header", [None, "", "   ", "not-a-signature"])
def test_no_signature_that_could_verify_is_refused_before_the_body_is_read(
    make_settings: Callable[..., Settings], header: str | None
) -> None:
    """The body never comes: a 401 all the same, at once, instead of the 408 after the body's
    timeout (an hour here). Only a well-formed signature makes the endpoint wait for a body."""
    from tests.conftest import serving

    lines = ["POST /webhooks/complycube HTTP/1.1", "Host: test", "Content-Length: 1000"]
    if header is not None:
        lines.append(f"ComplyCube-Signature: {header}")
    with (
        serving(create_app(make_settings(body_timeout_seconds=3600))) as port,
        socket.create_connection(("127.0.0.1", port), timeout=30) as sock,
    ):
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 401"), answer


def test_refusals_for_size_and_time_do_not_tell_the_limits(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(max_body_bytes=1234))) as small:
        body = b"{" + b" " * 2000 + b"}"
        refused = small.post(URL, content=body, headers=signature(body))
    assert refused.status_code == 413
    assert not any(ch.isdigit() for ch in refused.text)
