"""What hostile clients do to one `cubehook web` process (the README's figures for its limits).

``flood``: one connection sends a 150 MiB header; prints how much was sent before the answer and
the process's resident memory before, at its peak and after. ``slowloris``: 1,100 connections
hold half-sent headers (a byte every 2 s) while a valid delivery is sent every second for 12 s;
prints each delivery's answer and how many of the connections are still open 20 s in.
The process's file-descriptor limit is ``--nofile`` (1,024 by default, a common default).
Run: ``.venv/bin/python bench/hostile_clients.py flood|slowloris [--nofile N] [--smoke]``. ``--smoke``,
only to prove it still runs: an 8 MiB header (over the head limit); 20 connections, 2 deliveries,
one trickle.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.signature import sign

SECRET = "hostile_secret"
CUBEHOOK = str(Path(sys.executable).parent / "cubehook")


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def deliver(port: int, n: int) -> str:
    body = (
        f'{{"id":"hostile-{n}","type":"workflowSession.completed","resourceType":"workflowSession",'
        '"payload":{"id":"s1"},"createdAt":"2026-01-01T00:00:00.000Z"}'
    ).encode()
    try:
        response = httpx2.post(
            f"http://127.0.0.1:{port}/webhooks/complycube",
            content=body,
            headers={"ComplyCube-Signature": sign(body, SECRET.encode())},
            timeout=40,
        )
    except httpx2.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    return str(response.status_code)


def flood(port: int, pid: int, mib: int) -> None:
    before = memory_mb(pid, "VmRSS")
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /webhooks/complycube HTTP/1.1\r\nHost: x\r\nX-Flood: ")
        try:
            for _ in range(mib):
                sock.sendall(b"a" * (1024 * 1024))
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            answer = sock.recv(200).split(b"\r\n")[0].decode() or "connection closed"
        except OSError as exc:
            answer = f"no answer ({type(exc).__name__})"
    time.sleep(0.5)
    print(f"flood: {sent} MiB of one header sent; answer: {answer}")
    peak, after = memory_mb(pid, "VmHWM"), memory_mb(pid, "VmRSS")
    print(f"RSS before {before:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB")
    print(f"then a valid delivery: {deliver(port, 0)}")


def slowloris(port: int, count: int, deliveries: int = 12, trickles: int = 4) -> None:
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST /webhooks/complycube HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        held.append(sock)
    print(f"slowloris: {len(held)} connections holding half-sent headers")
    started = time.monotonic()
    for n in range(1, deliveries + 1):
        print(f"  +{time.monotonic() - started:4.1f} s: a valid delivery gets {deliver(port, n)}")
        time.sleep(max(0.0, started + n - time.monotonic()))
    for _ in range(trickles):  # trickle on: a byte per connection every 2 s
        time.sleep(2)
        for sock in held:
            with contextlib.suppress(OSError):
                sock.send(b"a")
    still_open = sum(is_open(sock) for sock in held)
    print(f"  +{time.monotonic() - started:4.1f} s: {still_open} of {len(held)} still open")
    for sock in held:
        sock.close()


def is_open(sock: socket.socket) -> bool:
    """Not closed by the server (whatever it sent first)."""
    sock.setblocking(False)
    while True:
        try:
            if not sock.recv(65536):
                return False
        except BlockingIOError:
            return True
        except OSError:
            return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["flood", "slowloris"])
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument(
        "--count", type=int, default=None, help="slowloris's connections [1100; 20 with --smoke]"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    args.count = args.count or (20 if args.smoke else 1100)
    port = free_port()

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))

    with EmbeddedRedis() as redis:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")} | {
            "CUBEHOOK_ENV_FILE": ""
        }  # nor var/dev.env
        env.update(
            CUBEHOOK_REDIS_URL=redis.url, CUBEHOOK_WEBHOOK_SECRETS=SECRET, CUBEHOOK_PORT=str(port),
            CUBEHOOK_ADMIN_PORT=str(free_port()), CUBEHOOK_LOG_LEVEL="ERROR",
        )  # fmt: skip
        quiet = subprocess.DEVNULL
        web = subprocess.Popen([CUBEHOOK, "web"], env=env, stdout=quiet, stderr=quiet, preexec_fn=limit_files)
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz")
            deliver(port, 100)  # warm up
            if args.what == "flood":
                flood(port, web.pid, 8 if args.smoke else 150)
            elif args.smoke:
                slowloris(port, args.count, deliveries=2, trickles=1)
            else:
                slowloris(port, args.count)
        finally:
            web.terminate()
            web.wait(timeout=10)


if __name__ == "__main__":
    main()
