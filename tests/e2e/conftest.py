"""Helpers for tests that run cubehook's commands as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import free_port
from tests.conftest import DECISION_KEY, SECRET

CUBEHOOK = str(Path(sys.executable).parent / "cubehook")


def cubehook_env(**extra: str) -> dict[str, str]:
    """This environment without any CUBEHOOK_ setting of the developer's, nor their var/dev.env,
    plus ``extra``; a free admin port unless ``extra`` names one (the default one may be taken by a
    test running alongside). Plain HTTP is allowed: the simulator and the receivers the processes
    talk to are on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")}
    env.update(CUBEHOOK_ENV_FILE="", CUBEHOOK_LOG_FORMAT="json", CUBEHOOK_ALLOW_INSECURE_TRANSPORT="true")
    env.update(CUBEHOOK_DECISION_KEYS=DECISION_KEY)
    env.update(CUBEHOOK_ADMIN_PORT=str(free_port()))
    env.update(extra)
    return env


@contextmanager
def running(command: list[str], env: dict[str, str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; enter once ``ready_url`` answers 200."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(ready_url, timeout=30)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def web(redis_url: str) -> Iterator[str]:
    """A `cubehook web` process on the private Redis; its base URL."""
    port = free_port()
    env = cubehook_env(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET, CUBEHOOK_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    with running([CUBEHOOK, "web"], env, f"{base}/healthz"):
        yield base
