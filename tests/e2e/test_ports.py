"""Ports: every listener a process opens on a taken port stops it with one line naming its setting,
and the Procfile's web line takes CUBEHOOK_PORT over the platform's PORT. Real commands."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from cubehook_dev.devredis import free_port
from tests.conftest import ROOT, SECRET
from tests.e2e.conftest import CUBEHOOK, cubehook_env

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("command", "setting"),
    [
        (["web"], "CUBEHOOK_PORT"),
        (["web"], "CUBEHOOK_ADMIN_PORT"),
        (["console"], "CUBEHOOK_CONSOLE_PORT"),
        (["worker", "--burst"], "CUBEHOOK_WORKER_METRICS_PORT"),
    ],
)
def test_a_taken_port_stops_the_process_with_one_line_naming_its_setting(
    redis_url: str, tmp_path: Path, taken_port: int, command: list[str], setting: str
) -> None:
    env = cubehook_env(
        CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/audit.db",
        CUBEHOOK_WEBHOOK_SECRETS=SECRET, CUBEHOOK_COMPLYCUBE_API_KEY="test_x",
        CUBEHOOK_CONSOLE_SECRET_KEY="k" * 32, CUBEHOOK_PORT=str(free_port()),
    )  # fmt: skip
    env[setting] = str(taken_port)
    result = subprocess.run([CUBEHOOK, *command], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"Error: port {taken_port} on 127.0.0.1 is taken by another process: stop what holds it, "
        f"or set {setting} to a free port"
    ]


@pytest.mark.parametrize(
    ("given", "port"),
    [
        ({"CUBEHOOK_PORT": "8123", "PORT": "5000"}, "8123"),  # the setting wins over honcho's PORT
        ({"PORT": "5000"}, "5000"),  # a platform's PORT (Heroku) when the setting is unset
        ({}, "8000"),
    ],
)
def test_the_procfile_web_line_takes_cubehook_port_over_port(
    tmp_path: Path, given: dict[str, str], port: str
) -> None:
    [line] = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")]
    stub = tmp_path / "cubehook"  # says what it was given, as the shell of a Procfile runner expands it
    stub.write_text('#!/bin/sh\necho "$@"\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "CUBEHOOK_PORT")}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    run = subprocess.run(
        ["sh", "-c", line.removeprefix("web:")], env=env | given, capture_output=True, text=True
    )
    assert run.stdout.split() == ["web", "--port", port]
