"""The endpoint behind a real uvicorn server, spoken to over raw sockets: what a test client
cannot show (a body refused before it is all sent)."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from redis import Redis

from service.rq_jobs import rq_queue
from service.settings import Settings
from service.web.app import create_app
from tests.conftest import event_body, serving, signature

LIMIT = 64 * 1024


BODY_TIMEOUT = 0.5


@pytest.fixture
def server_port(make_settings: Callable[..., Settings]) -> Iterator[int]:
    settings = make_settings(max_body_bytes=LIMIT, body_timeout_seconds=BODY_TIMEOUT)
    with serving(create_app(settings)) as port:
        yield port


def _read_status(sock: socket.socket) -> str:
    sock.settimeout(5)
    data = sock.recv(4096)
    return data.split(b"\r\n", 1)[0].decode()


def _headers(length_header: str, body_for_signature: bytes = b"{}") -> bytes:
    sig = signature(body_for_signature)["ComplyCube-Signature"]
    return (
        "POST /webhooks/complycube HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"ComplyCube-Signature: {sig}\r\n{length_header}\r\n\r\n"
    ).encode()


def test_declared_oversize_body_is_refused_before_it_is_sent(server_port: int) -> None:
    with socket.create_connection(("127.0.0.1", server_port)) as sock:
        sock.sendall(_headers(f"Content-Length: {100 * 1024 * 1024}"))
        # Not one byte of the 100 MiB body has been sent, and the answer is already there.
        assert _read_status(sock) == "HTTP/1.1 413 Request Entity Too Large"


def test_chunked_body_is_refused_once_over_the_limit(server_port: int) -> None:
    chunk = b" " * 8192
    sent = 0
    with socket.create_connection(("127.0.0.1", server_port)) as sock:
        sock.sendall(_headers("Transfer-Encoding: chunked"))
        answered = False
        while sent < 16 * LIMIT:
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0.005)[0]:
                answered = True
                break
        assert answered or sent < 16 * LIMIT
        assert _read_status(sock) == "HTTP/1.1 413 Request Entity Too Large"
    # The server stopped reading soon after the limit, far before the 1 MiB the client meant to send.
    assert sent < 4 * LIMIT


def test_event_is_accepted_over_a_real_connection(server_port: int, redis_url: str) -> None:
    body = event_body(event_id="live-1")
    with socket.create_connection(("127.0.0.1", server_port)) as sock:
        sock.sendall(_headers(f"Content-Length: {len(body)}", body_for_signature=body) + body)
        assert _read_status(sock) == "HTTP/1.1 202 Accepted"
    redis = Redis.from_url(redis_url)
    assert rq_queue("cubehook", redis).job_ids == ["evt-live-1"]
    redis.close()


@pytest.mark.parametrize("trickle", [False, True], ids=["stalled", "trickling"])
def test_a_slow_client_gets_408_and_holds_nobody_up(server_port: int, redis_url: str, trickle: bool) -> None:
    body = event_body(event_id="slow-client-1")
    with socket.create_connection(("127.0.0.1", server_port)) as slow:
        slow.sendall(_headers(f"Content-Length: {len(body)}", body_for_signature=body) + body[:10])
        started = time.monotonic()
        # Meanwhile, another sender is served at once.
        other = event_body(event_id="fast-client-1")
        with socket.create_connection(("127.0.0.1", server_port)) as fast:
            fast.sendall(_headers(f"Content-Length: {len(other)}", body_for_signature=other) + other)
            assert _read_status(fast) == "HTTP/1.1 202 Accepted"
        assert time.monotonic() - started < BODY_TIMEOUT
        if trickle:  # a byte every 50 ms: never idle, never done
            for byte in body[10:30]:
                if select.select([slow], [], [], 0)[0]:
                    break
                slow.sendall(bytes([byte]))
                time.sleep(0.05)
        assert _read_status(slow) == "HTTP/1.1 408 Request Timeout"
        assert time.monotonic() - started < BODY_TIMEOUT + 2
    redis = Redis.from_url(redis_url)
    assert rq_queue("cubehook", redis).job_ids == ["evt-fast-client-1"]  # the slow one: none
    redis.close()
