"""The endpoint behind a real uvicorn server, spoken to over raw sockets: what a test client
cannot show (a body refused before it is all sent)."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Iterator

import pytest
from redis import Redis
from rq import Queue

from service.app import create_app
from service.settings import Settings
from tests.conftest import event_body, serving, signature

LIMIT = 64 * 1024


@pytest.fixture
def server_port(make_settings: Callable[..., Settings]) -> Iterator[int]:
    with serving(create_app(make_settings(max_body_bytes=LIMIT))) as port:
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
    assert Queue("cubehook", connection=redis).job_ids == ["evt-live-1"]
    redis.close()
