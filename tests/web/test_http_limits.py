"""The public listener as `cubehook web` configures it (service.web.serve.configs), over raw sockets:
request heads bounded in size and in time, idle connections closed, a concurrency limit; and
none of it in the way of ordinary deliveries."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from redis import Redis
from rq import Queue

from cubehook_dev.devredis import free_port
from service.metrics import WEB
from service.settings import Settings
from service.web.app import create_apps
from service.web.serve import configs
from tests.conftest import event_body, received, serving_config, signature

HEAD_TIMEOUT = 0.5


@pytest.fixture
def listener(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., int]]:
    """Start the public listener with settings overrides; its port. Stopped at the test's end."""
    with ExitStack() as stack:

        def start(**overrides: object) -> int:
            port = free_port()
            values = {"port": port, "admin_port": 0, "head_timeout_seconds": HEAD_TIMEOUT, **overrides}
            settings = make_settings(**values)
            (config,) = configs(settings, create_apps(settings))
            stack.enter_context(serving_config(config))
            return port

        yield start


def delivery(event_id: str, **payload: str) -> bytes:
    body = event_body(event_id=event_id, **payload)
    sig = signature(body)["ComplyCube-Signature"]
    return (
        "POST /webhooks/complycube HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"ComplyCube-Signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def status_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode()


def refused(reason: str) -> float:
    return WEB.get_sample_value("cubehook_http_refused_total", {"reason": reason}) or 0.0


def test_an_oversized_head_gets_431_and_is_not_read_further(listener: Callable[..., int]) -> None:
    port = listener(max_head_bytes=16 * 1024)
    before = refused("head_too_large")
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /webhooks/complycube HTTP/1.1\r\nHost: t\r\nX-Flood: ")
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = received(sock)
    assert status_line(data) in ("HTTP/1.1 431 Request Header Fields Too Large", "<reset>")
    assert sent < 16 * 1024 * 1024  # refused long before the 64 MiB the client meant to send
    assert refused("head_too_large") == before + 1


def test_a_head_sent_slowly_gets_408_and_is_logged(
    listener: Callable[..., int], log_output: io.StringIO
) -> None:
    port = listener()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /webhooks/complycube HTTP/1.1\r\nHost: t\r\n")
        for _ in range(40):  # a byte every 50 ms: never idle, never done
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
        data = received(sock)
    assert status_line(data) == "HTTP/1.1 408 Request Timeout"
    assert data.endswith(b"<closed>")
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert {"event": "http.refused", "reason": "head_timeout", "status": 408}.items() <= lines[-1].items()


def test_a_connection_that_sends_nothing_is_closed(listener: Callable[..., int]) -> None:
    port = listener()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert received(sock) == b"<closed>"


def test_keep_alive_requests_each_get_their_own_head_deadline(
    listener: Callable[..., int], redis: Redis
) -> None:
    """A connection reused after longer than the head timeout is not cut: the deadline runs from
    each request's first byte. A body far over the head limit is not taken for a head."""
    port = listener(max_head_bytes=4096, keep_alive_timeout_seconds=5)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(delivery("keep-1"))
        assert status_line(received(sock)) == "HTTP/1.1 202 Accepted"
        time.sleep(HEAD_TIMEOUT * 2)
        sock.sendall(delivery("keep-2", notes="n" * 20_000))  # 20 KB of body in the head's packet
        assert status_line(received(sock)) == "HTTP/1.1 202 Accepted"
    assert Queue("cubehook", connection=redis).job_ids == ["evt-keep-1", "evt-keep-2"]


def test_an_idle_keep_alive_connection_is_closed(listener: Callable[..., int]) -> None:
    port = listener(keep_alive_timeout_seconds=1, head_timeout_seconds=30)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(delivery("idle-1"))
        assert status_line(received(sock)) == "HTTP/1.1 202 Accepted"
        assert received(sock, timeout=15) == b"<closed>"  # by the server, not by the head timeout


def test_requests_past_the_concurrency_limit_get_503(listener: Callable[..., int]) -> None:
    port = listener(limit_concurrency=2, head_timeout_seconds=30)
    address = ("127.0.0.1", port)
    with (
        socket.create_connection(address),  # two idle connections: the limit
        socket.create_connection(address),
        socket.create_connection(address) as third,
    ):
        third.sendall(delivery("over-limit-1"))
        assert status_line(received(third)) == "HTTP/1.1 503 Service Unavailable"
    with socket.create_connection(("127.0.0.1", port)) as later:
        later.sendall(delivery("over-limit-2"))
        assert status_line(received(later)) == "HTTP/1.1 202 Accepted"


def flooded_head(header_bytes: int) -> bytes:
    """A signed-looking request whose head carries one header of ``header_bytes`` bytes."""
    return (
        "POST /webhooks/complycube HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"X-Flood: {'a' * header_bytes}\r\nContent-Length: 2\r\n\r\n{{}}"
    ).encode()


@pytest.mark.parametrize("writes", [1, 2], ids=["one-write", "two-writes"])
def test_an_oversized_head_gets_431_however_it_arrives(listener: Callable[..., int], writes: int) -> None:
    """The bound holds for a head that arrives whole (one write of 100 KB) or ends in the write
    that completes it (two writes of 10 KB each): the app never sees it."""
    port = listener(max_head_bytes=16 * 1024)
    before = refused("head_too_large")
    request = flooded_head(100_000 if writes == 1 else 20_000 - 100)
    parts = [request] if writes == 1 else [request[:10_000], request[10_000:]]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for part in parts:
            sock.sendall(part)
            time.sleep(0.1)  # so that the server reads the parts apart
        data = received(sock)
    assert status_line(data) == "HTTP/1.1 431 Request Header Fields Too Large"
    assert data.endswith(b"<closed>")
    assert refused("head_too_large") == before + 1


@pytest.mark.parametrize("shape", ["headers", "url"])
def test_many_small_headers_or_a_long_url_in_one_write_get_431(
    listener: Callable[..., int], shape: str
) -> None:
    port = listener(max_head_bytes=16 * 1024)
    headers = "".join(f"X-H{i}: {'b' * 90}\r\n" for i in range(1_000)) if shape == "headers" else ""
    path = "/webhooks/complycube" + ("?q=" + "c" * 100_000 if shape == "url" else "")
    request = f"POST {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: 2\r\n\r\n{{}}".encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        data = received(sock)
    assert status_line(data) == "HTTP/1.1 431 Request Header Fields Too Large"


def test_a_head_just_under_the_bound_is_accepted(listener: Callable[..., int]) -> None:
    """In one write and in two: the app answers it (401, for it is not signed)."""
    port = listener(max_head_bytes=16 * 1024)
    request = flooded_head(16 * 1024 - 200)
    for parts in ([request], [request[:8_000], request[8_000:]]):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            for part in parts:
                sock.sendall(part)
            assert status_line(received(sock)) == "HTTP/1.1 401 Unauthorized"
