"""The real commands as separate processes: `cubehook web`, `cubehook worker`, `cubehook dev`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from service.devredis import free_port
from tests.conftest import SECRET, event_body, signature

pytestmark = pytest.mark.e2e
CUBEHOOK = str(Path(sys.executable).parent / "cubehook")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")}
    env.update(CUBEHOOK_LOG_FORMAT="json", **extra)
    return env


def _wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx2.get(url, timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not come up"
        time.sleep(0.1)


@pytest.fixture
def web(redis_url: str) -> Iterator[str]:
    port = free_port()
    env = _env(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET, CUBEHOOK_PORT=str(port))
    process = subprocess.Popen([CUBEHOOK, "web"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base + "/healthz")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_web_refuses_to_start_without_a_secret(redis_url: str) -> None:
    result = subprocess.run(
        [CUBEHOOK, "web"], env=_env(CUBEHOOK_REDIS_URL=redis_url), capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "CUBEHOOK_WEBHOOK_SECRETS" in result.stderr


def test_event_travels_from_web_to_worker(web: str, redis_url: str) -> None:
    body = event_body(event_id="e2e-1", session_id="sess-e2e")
    response = httpx2.post(web + "/webhooks/complycube", content=body, headers=signature(body), timeout=5)
    assert response.status_code == 202
    assert httpx2.get(web + "/readyz", timeout=5).status_code == 200

    worker = subprocess.run(
        [CUBEHOOK, "worker", "--burst"],
        env=_env(CUBEHOOK_REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    assert re.search(
        r'"event": "event.processed".*"session_id": "sess-e2e"|"session_id": "sess-e2e".*'
        r'"event": "event.processed"',
        worker.stderr,
    ), worker.stderr


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_dev_runs_the_whole_system_and_stops_it_all() -> None:
    port = free_port()
    process = subprocess.Popen(
        [CUBEHOOK, "dev"],
        env=_env(PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = ""
    try:
        while "Ctrl-C" not in output:
            line = process.stdout.readline()
            assert line, output
            output += line
        secret = re.search(r"secret:\s+(dev_[0-9a-f]{32})", output).group(1)  # type: ignore[union-attr]
        _wait_http(f"http://127.0.0.1:{port}/readyz", timeout=30)
        body = event_body(event_id="dev-1", session_id="sess-dev")
        response = httpx2.post(
            f"http://127.0.0.1:{port}/webhooks/complycube",
            content=body,
            headers=signature(body, secret),
            timeout=5,
        )
        assert response.status_code == 202
        deadline = time.monotonic() + 30
        while "event.processed" not in output:
            assert time.monotonic() < deadline, output
            output += process.stdout.readline()
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        output += rest
    redis_port = int(re.search(r"redis:\s+redis://127\.0\.0\.1:(\d+)", output).group(1))  # type: ignore[union-attr]
    assert "(embedded)" in output
    assert "sess-dev" in output
    assert not _port_open(port), "web still listening after Ctrl-C"
    assert not _port_open(redis_port), "embedded Redis still running after Ctrl-C"
    assert process.returncode is not None


def test_dev_never_prints_a_secret_it_was_given(redis_url: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [CUBEHOOK, "dev"],
        env=_env(PORT=str(port), CUBEHOOK_WEBHOOK_SECRETS="given_secret_value", CUBEHOOK_REDIS_URL=redis_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/readyz", timeout=30)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "from CUBEHOOK_WEBHOOK_SECRETS (not shown)" in output
    assert "given_secret_value" not in output
    assert "(embedded)" not in output
