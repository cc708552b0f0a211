"""The real commands as separate processes: `cubehook web`, `cubehook worker`, `cubehook dev`."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import free_port
from tests.conftest import event_body, signature
from tests.e2e.conftest import CUBEHOOK, cubehook_env

pytestmark = pytest.mark.e2e


def test_web_refuses_to_start_without_a_secret(redis_url: str) -> None:
    result = subprocess.run(
        [CUBEHOOK, "web"],
        env=cubehook_env(CUBEHOOK_REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "CUBEHOOK_WEBHOOK_SECRETS" in result.stderr


def test_worker_refuses_to_start_without_an_api_key(redis_url: str) -> None:
    result = subprocess.run(
        [CUBEHOOK, "worker", "--burst"],
        env=cubehook_env(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_DATABASE_URL="sqlite:///:memory:"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "CUBEHOOK_COMPLYCUBE_API_KEY" in result.stderr


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_dev_runs_the_whole_system_and_stops_it_all(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [CUBEHOOK, "dev"],
        env=cubehook_env(PORT=str(port), CUBEHOOK_ENV_FILE="var/dev.env"),
        cwd=tmp_path,
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
        admin = re.search(r"admin:\s+(http://127\.0\.0\.1:\d+)", output).group(1)  # type: ignore[union-attr]
        wait_ready(f"{admin}/readyz", timeout=30)
        # The console, with the development login it printed.
        console, password = re.search(
            r"console:\s+(http://127\.0\.0\.1:\d+)\s+\(log in as dev / (\S+)\)", output
        ).groups()  # type: ignore[union-attr]
        wait_ready(f"{console}/healthz", timeout=30)
        with httpx2.Client(base_url=console, timeout=5) as browser:
            token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text).group(1)  # type: ignore[union-attr]
            logged_in = browser.post("/login", data={"name": "dev", "password": password, "csrf": token})
            assert logged_in.status_code == 303
            assert browser.get("/queue").status_code == 200
        # The probes are on the admin listener, not on the public one.
        assert httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 404
        body = event_body(event_id="dev-1", session_id="sess-dev")  # a session the simulator never had
        response = httpx2.post(
            f"http://127.0.0.1:{port}/webhooks/complycube",
            content=body,
            headers=signature(body, secret),
            timeout=5,
        )
        assert response.status_code == 202
        deadline = time.monotonic() + 60
        decided = re.compile(r"demo\s+\| worker: workflow\.session\.completed -> session \w+ decided (\w+)")
        while (
            sorted(set(decided.findall(output))) != ["attention", "clear", "rejected"]
            or "ComplyCube's API does not know session sess-dev" not in output
        ):
            assert time.monotonic() < deadline, output
            output += process.stdout.readline()
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        output += rest
    assert process.returncode == 0, output
    assert "Traceback" not in output
    redis_port = int(re.search(r"redis:\s+redis://127\.0\.0\.1:(\d+)", output).group(1))  # type: ignore[union-attr]
    assert "(embedded: stops with this run)" in output
    # The demo played a clear, an attention and a rejected session through the whole system.
    for outcome in ("clear", "attention", "rejected"):
        assert f"ComplyCube will say {outcome}" in output
    assert not _port_open(port), "web still listening after Ctrl-C"
    assert not _port_open(int(admin.rsplit(":", 1)[1])), "web's admin listener still open after Ctrl-C"
    assert not _port_open(redis_port), "embedded Redis still running after Ctrl-C"
    assert not _port_open(int(console.rsplit(":", 1)[1])), "console still listening after Ctrl-C"
    # What outlives the run: the settings every command in the folder reads, and the audit trail.
    recorded = (tmp_path / "var" / "dev.env").read_text()
    assert f"CUBEHOOK_WEBHOOK_SECRETS='{secret}'" in recorded
    assert f"CUBEHOOK_REDIS_URL='redis://127.0.0.1:{redis_port}/0'" in recorded
    assert (tmp_path / "var" / "dev-audit.db").stat().st_size > 0
    assert (tmp_path / "var" / "dev.env").stat().st_mode & 0o077 == 0  # the owner's alone


def test_dev_never_prints_nor_records_a_secret_it_was_given(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [CUBEHOOK, "dev"],
        env=cubehook_env(
            PORT=str(port),
            CUBEHOOK_WEBHOOK_SECRETS="given_secret_value",
            CUBEHOOK_REDIS_URL=redis_url,
            CUBEHOOK_ENV_FILE="var/dev.env",
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = ""
    try:
        while "the demo's sessions are decided" not in output:
            line = process.stdout.readline()
            assert line, output
            output += line
        output += process.stdout.readline() * 4  # the lines to try
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        output += rest
    assert process.returncode == 0, output
    assert "from CUBEHOOK_WEBHOOK_SECRETS (not shown)" in output
    assert "given_secret_value" not in output
    assert " --secret " not in output  # the line to try signs with the variable the user has
    assert "(embedded" not in output
    recorded = (tmp_path / "var" / "dev.env").read_text()
    assert "given_secret_value" not in recorded
    assert f"CUBEHOOK_REDIS_URL='{redis_url}'" in recorded
    assert "DEV_REDIS_EMBEDDED" not in recorded
