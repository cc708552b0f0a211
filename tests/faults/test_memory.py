"""The web process's memory stays bounded under hostile and heavy input: bodies far over the
limit (declared and chunked), large unsigned garbage and a thousand accepted events leave its
resident size where a warmed-up process sits, give or take what its own caches hold."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx2
import pytest

from cubehook_dev.devredis import free_port
from tests.conftest import SECRET, event_body, signature
from tests.e2e.conftest import CUBEHOOK, cubehook_env, running

pytestmark = pytest.mark.e2e
GROWTH_MB = 40  # allowed: allocator caches, connection buffers; not proportional to what was sent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def chunked_flood(port: int, megabytes: int) -> str:
    """Send a signed-looking chunked body of ``megabytes`` MiB; the status line of the answer."""
    head = (
        "POST /webhooks/complycube HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"ComplyCube-Signature: {'0' * 64}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"x" * 65536
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        try:
            for _ in range(megabytes * 16):
                sock.sendall(b"10000\r\n" + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-way, as it should be
        sock.settimeout(10)
        return sock.recv(200).split(b"\r\n", 1)[0].decode()


def test_memory_stays_bounded_under_heavy_and_hostile_input(redis_url: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = cubehook_env(
        CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET, CUBEHOOK_PORT=str(port),
        CUBEHOOK_LOG_LEVEL="WARNING", CUBEHOOK_MAX_BODY_BYTES=str(1024 * 1024),  # 16 times the default
    )  # fmt: skip
    with running([CUBEHOOK, "web"], env, f"{url}/healthz") as web, httpx2.Client(timeout=30) as http:
        for n in range(200):  # warm up: every code path once, caches filled
            body = event_body(event_id=f"warm-{n}")
            assert (
                http.post(f"{url}/webhooks/complycube", content=body, headers=signature(body)).status_code
                == 202
            )
        warm = rss_mb(web.pid)
        for _ in range(20):  # 20 x 32 MiB chunked: refused once over the 1 MiB limit
            assert chunked_flood(port, 32) in ("HTTP/1.1 413 Request Entity Too Large", "")
        garbage = b"\xff" * (1024 * 1024 - 1)
        for _ in range(100):  # 100 MiB of unsigned bodies just under the limit
            assert http.post(f"{url}/webhooks/complycube", content=garbage).status_code == 401
        for n in range(1000):  # a thousand accepted events
            body = event_body(event_id=f"heavy-{n}")
            assert (
                http.post(f"{url}/webhooks/complycube", content=body, headers=signature(body)).status_code
                == 202
            )
        after = rss_mb(web.pid)
    assert after - warm < GROWTH_MB, f"RSS {warm:.0f} MB -> {after:.0f} MB after ~740 MiB of input"
