"""A primary, a replica and three sentinels, each a real redis-server on a free port in a folder of
its own, for the tests of failover, WAIT and the topology. Stopped after each test, even a failed
one; the tests skip, saying why, without a redis-server binary."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import RedisError

from cubehook_dev.devredis import free_port
from service.settings import Settings
from tests.conftest import SECRET
from workers.scriptload import load_at

SERVICE = "mymaster"


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


@dataclass
class Node:
    port: int
    args: list[str]
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", *self.args],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: bool(self.client().ping()), 10, f"redis-server on {self.port} answers")

    def client(self) -> Redis:
        return Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Replicated:
    primary: Node
    replica: Node
    sentinels: list[Node] = field(default_factory=list)

    @property
    def sentinel_url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": self.sentinel_url,
            "webhook_secrets": SECRET,
            "log_format": "json",
        }
        values.update(overrides)
        return Settings(**values)

    def master_port(self) -> int:
        answer = self.sentinels[0].client().sentinel_get_master_addr_by_name(SERVICE)
        assert isinstance(answer, tuple | list)
        return int(answer[1])

    def nodes(self) -> list[Node]:
        return [self.primary, self.replica, *self.sentinels]


def data_node(folder: Path, port: int, *extra: str) -> Node:
    node_dir = folder / str(port)
    node_dir.mkdir()
    # No 5 s pause before a replica's first full sync (repl-diskless-sync-delay's default).
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--repl-diskless-sync-delay", "0", *extra]
    return Node(port, args, node_dir)


def sentinel_node(folder: Path, port: int, primary_port: int) -> Node:
    node_dir = folder / f"sentinel-{port}"
    node_dir.mkdir()
    (node_dir / "sentinel.conf").write_text(
        f"port {port}\nbind 127.0.0.1\ndir {node_dir}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 5000\n"
    )
    return Node(port, [str(node_dir / "sentinel.conf"), "--sentinel"], node_dir)


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[Replicated]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH: the Sentinel tests need real servers (redis-server --sentinel)")
    primary_port = free_port()
    setup = Replicated(data_node(tmp_path, primary_port), data_node(tmp_path, free_port()))
    setup.replica.args += ["--replicaof", "127.0.0.1", str(primary_port)]
    setup.sentinels = [sentinel_node(tmp_path, free_port(), primary_port) for _ in range(3)]
    try:
        for node in setup.nodes():
            node.start()
        replica = setup.replica.client()
        wait_until(
            lambda: replica.info("replication")["master_link_status"] == "up", 10, "the replica is in sync"
        )
        for sentinel in setup.sentinels:
            client = sentinel.client()
            wait_until(
                lambda c=client: (
                    c.sentinel_master(SERVICE)["num-other-sentinels"] == 2  # type: ignore[misc]
                    and c.sentinel_master(SERVICE)["num-slaves"] == 1
                ),
                15,
                "the sentinels see each other and the replica",
            )
        load_at(f"redis://127.0.0.1:{primary_port}/0")  # what a worker's first tick does
        yield setup
    finally:
        for node in setup.nodes():
            node.stop()
