"""Ingest throughput and latency of the real endpoint against baselines on the same server.

The real endpoint (verify + parse + de-duplicate + enqueue, every request a new signed event)
against ``/bench/onekey`` (writes one Redis key) and ``/bench/noop``, at 50 concurrent keep-alive
connections, from a load generator in another process (asyncio on uvloop, raw HTTP/1.1), for a
fixed time each, in alternating rounds. Prints requests/s, p50 and p99 latency, and the ratios.
Targets: the real endpoint at >= 0.8 of onekey, p99 under 25 ms.
Run: ``.venv/bin/python bench/ingest.py [--rounds 3] [--seconds 4]``.

``--wait``: the intake's cost of WAIT (docs/redis.md): a primary with a local replica, two servers
of the real endpoint, one waiting for 1 replica and one for none, in alternating rounds; prints
each one's throughput and the ratio.

``--smoke`` (with either): 4 connections, one round of 0.3 s, only to prove it still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.signature import sign

SECRET = "bench_secret"
HERE = Path(__file__).resolve().parent


def requests_for(path: str, n: int, offset: int) -> list[bytes]:
    out = []
    for i in range(offset, offset + n):
        body = json.dumps({
            "id": f"bench{i:012d}", "type": "workflow.session.completed", "resourceType": "workflow.session",
            "payload": {"id": f"sess{i % 997:08d}", "status": "complete", "outcome": "clear"},
            "createdAt": "2026-11-29T00:00:00.000Z",
        }, separators=(",", ":")).encode()  # fmt: skip
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"ComplyCube-Signature: {sign(body, SECRET.encode())}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def connection(port: int, requests: list[bytes], deadline: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    for request in requests:
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        if not head.startswith((b"HTTP/1.1 202", b"HTTP/1.1 200")):
            raise RuntimeError(head.split(b"\r\n")[0].decode())
        latencies.append(time.perf_counter() - started)
        done += 1
    writer.close()
    return done


def load(
    port: int, path: str, connections: int, seconds: float, offset: int, result: multiprocessing.Queue[object]
) -> None:
    import uvloop

    per_connection = min(8000, max(1000, int(seconds * 12_000)))  # more than a connection gets through
    batches = [requests_for(path, per_connection, offset + c * per_connection) for c in range(connections)]

    async def run() -> tuple[int, list[float], float]:
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds
        counts = await asyncio.gather(*(connection(port, b, deadline, latencies) for b in batches))
        return sum(counts), latencies, time.perf_counter() - started

    result.put(uvloop.run(run()))


def measure(
    port: int, path: str, connections: int, seconds: float, offset: int
) -> tuple[float, float, float]:
    queue: multiprocessing.Queue[object] = multiprocessing.Queue()
    worker = multiprocessing.Process(target=load, args=(port, path, connections, seconds, offset, queue))
    worker.start()
    got = queue.get()
    assert isinstance(got, tuple), got
    count, latencies, elapsed = got
    worker.join()
    cuts = statistics.quantiles(latencies, n=100)
    return count / elapsed, cuts[49] * 1000, cuts[98] * 1000


def start_server(port: int, redis_url: str, min_replicas: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(HERE / "ingest_server.py"), "--port", str(port), "--redis-url", redis_url]
    command += ["--secret", SECRET, "--min-replicas", min_replicas]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    return server


def wait_cost(args: argparse.Namespace) -> None:
    """The real endpoint with WAIT 1 (a local replica acknowledging) against WAIT off."""
    from redis import Redis

    results: dict[str, list[float]] = {"wait 1": [], "no wait": []}
    with EmbeddedRedis() as primary:
        replica_port = free_port()
        replica = subprocess.Popen(
            [primary.binary, "--port", str(replica_port), "--save", "", "--appendonly", "no",
             "--replicaof", "127.0.0.1", str(primary.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        servers: list[subprocess.Popen[bytes]] = []
        try:
            deadline = time.monotonic() + 20
            while Redis(port=replica_port).info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.1)
            ports = {"wait 1": free_port(), "no wait": free_port()}
            servers = [start_server(ports["wait 1"], primary.url, "1")]
            servers.append(start_server(ports["no wait"], primary.url, "0"))
            measure(ports["no wait"], "/webhooks/complycube", args.connections, args.warm_up, 0)
            for round_ in range(args.rounds):
                for n, name in enumerate(results):
                    offset = (round_ * 2 + n + 1) * 10_000_000
                    rate, _p50, _p99 = measure(
                        ports[name], "/webhooks/complycube", args.connections, args.seconds, offset
                    )
                    results[name].append(rate)
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=10)
            replica.terminate()
            replica.wait(timeout=10)
    for name, rates in results.items():
        each = ", ".join(f"{r:.0f}" for r in rates)
        print(f"{name:<8} {statistics.median(rates):8.0f} req/s (rounds: {each})")
    ratios = [w / o for w, o in zip(results["wait 1"], results["no wait"], strict=True)]
    each = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"wait 1 / no wait = {statistics.median(ratios):.2f} (rounds: {each})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=None, help="[50; 4 with --smoke]")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per endpoint and round [4; 0.3 with --smoke]"
    )
    parser.add_argument("--rounds", type=int, default=None, help="[3; 1 with --smoke]")
    parser.add_argument("--wait", action="store_true", help="the cost of WAIT, with a local replica")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it still run?")
    args = parser.parse_args()
    args.connections = args.connections or (4 if args.smoke else 50)
    args.seconds = args.seconds or (0.3 if args.smoke else 4.0)
    args.rounds = args.rounds or (1 if args.smoke else 3)
    args.warm_up = min(1.0, args.seconds)  # seconds of load before the rounds
    if args.wait:
        wait_cost(args)
        return
    port = free_port()
    endpoints = (("noop", "/bench/noop"), ("onekey", "/bench/onekey"), ("cubehook", "/webhooks/complycube"))
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in endpoints}
    with EmbeddedRedis() as redis_server:
        command = [sys.executable, str(HERE / "ingest_server.py"), "--port", str(port)]
        command += ["--redis-url", redis_server.url, "--secret", SECRET]
        quiet = subprocess.DEVNULL
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        server = subprocess.Popen(command, env=env, stdout=quiet, stderr=quiet)
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz")
            measure(port, "/bench/noop", args.connections, args.warm_up, 0)
            # Rounds alternate the endpoints, so that a noisy neighbour hits each of them alike;
            # the ratio is taken within each round, and the median round is reported.
            for round_ in range(args.rounds):
                for n, (name, path) in enumerate(endpoints):
                    offset = (round_ * len(endpoints) + n + 1) * 10_000_000
                    runs[name].append(measure(port, path, args.connections, args.seconds, offset))
        finally:
            server.terminate()
            server.wait(timeout=10)
    cores = os.cpu_count()
    print(
        f"{args.connections} connections, {args.rounds} rounds of {args.seconds:g} s per endpoint, "
        f"one server process, {cores} cores (medians over the rounds)"
    )
    for name, results in runs.items():
        rate, p50, p99 = (statistics.median(r[i] for r in results) for i in range(3))
        print(f"{name:<9} {rate:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    ratios = [c[0] / o[0] for c, o in zip(runs["cubehook"], runs["onekey"], strict=True)]
    to_noop = [c[0] / n[0] for c, n in zip(runs["cubehook"], runs["noop"], strict=True)]
    print(
        f"cubehook / onekey = {statistics.median(ratios):.2f} (rounds: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + f")   cubehook / noop = {statistics.median(to_noop):.2f}"
    )
    print("target: cubehook / onekey >= 0.80, p99 < 25 ms")


if __name__ == "__main__":
    main()
