"""The infrastructure under cubehook, owned by a test: Redis (with or without its append-only file),
a Sentinel group (a primary, a replica, three sentinels) and a private PostgreSQL. Each can be
killed and started again on the same port, as the faults need."""

from __future__ import annotations

import contextlib
import glob
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from cubehook_dev.devredis import free_port, redis_server_binary
from tests.infra.processes import die_with_parent

MASTER_NAME = "mymaster"


class RedisProcess:
    """A redis-server on a fixed port whose data lives in ``workdir``. ``durable``: the append-only
    file as deploy/redis/redis.conf has it (appendonly yes, appendfsync everysec); otherwise no
    persistence at all, so a restart comes back empty."""

    def __init__(self, workdir: Path, name: str, durable: bool, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.name = name
        self.durable = durable
        self.extra = extra
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def command(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"] if self.durable else ["--appendonly", "no"]
        )
        return [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            *persistence, "--dir", str(self.dir), "--logfile", str(self.log), *self.extra,
        ]  # fmt: skip

    def start(self, timeout: float = 15.0) -> None:
        self.process = subprocess.Popen(
            self.command(), start_new_session=True, preexec_fn=die_with_parent,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_redis(self.client, timeout, self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write."""
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


def wait_for_redis(connect: Callable[[], Redis], timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while True:
        client = connect()
        try:
            if client.ping():
                return
        except RedisError:
            pass
        finally:
            client.close()
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis did not answer (exit status {process.poll()})")
        time.sleep(0.05)


class SentinelGroup:
    """A primary, a replica and three sentinels watching them as ``mymaster`` (quorum 2), each
    process AOF-durable like production. Sentinels judge a primary down after 1 s."""

    def __init__(self, workdir: Path) -> None:
        self.primary = RedisProcess(workdir, "primary", durable=True)
        self.replica = RedisProcess(workdir, "replica", durable=True)
        self.replica.extra = ("--replicaof", "127.0.0.1", str(self.primary.port))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinel_dirs = [workdir / f"sentinel{n}" for n in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def master_port(self) -> int | None:
        """The primary's port, as the first sentinel that answers names it."""
        for port in self.sentinel_ports:
            try:
                with Redis(port=port, socket_timeout=1, socket_connect_timeout=1) as sentinel:
                    found = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
            except RedisError:
                continue
            if found:
                return int(found[1])
        return None

    def client(self) -> Redis:
        """A client of the primary of the moment (the checks' own, not cubehook's)."""
        port = self.master_port()
        if port is None:
            raise RedisError("no sentinel names a primary")
        return Redis(port=port, socket_timeout=2, socket_connect_timeout=1)

    def start(self, timeout: float = 30.0) -> None:
        self.primary.start()
        self.replica.start()
        for port, folder in zip(self.sentinel_ports, self.sentinel_dirs, strict=True):
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\nlogfile {folder / 'sentinel.log'}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [redis_server_binary(), str(conf), "--sentinel"],
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinel group did not form")
            time.sleep(0.2)

    def _ready(self) -> bool:
        """Every sentinel sees the primary, the replica and the two other sentinels, and the
        replica is in sync: a failover can happen."""
        try:
            for port in self.sentinel_ports:
                with Redis(port=port, socket_timeout=1) as s:
                    if len(s.sentinel_sentinels(MASTER_NAME)) < 2 or not s.sentinel_slaves(MASTER_NAME):
                        return False
            with self.replica.client() as replica:
                return bool(replica.info("replication").get("master_link_status") == "up")
        except RedisError:
            return False

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        self.replica.stop()
        self.primary.stop()


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A private PostgreSQL cluster on a free port, run as the ``postgres`` OS user (initdb refuses
    root), its socket in its own folder; trust authentication on loopback only."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        # Not under pytest's tmp folder: that one is root's alone, and postgres must reach its files.
        self.root = Path(tempfile.mkdtemp(prefix="cubehook-pg-"))
        self.data, self.log = self.root / "data", self.root / "postgres.log"
        shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stderr[-1000:]}")

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
