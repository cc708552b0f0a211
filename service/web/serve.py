"""`cubehook web`: the public and the admin listener, two uvicorn servers in one process.

Both run in one event loop and share the Redis clients the public app created. One process per
container: scale with replicas (each process then counts, and is scraped for, its own requests).
A signal stops both; so does either one stopping (a port that cannot be bound exits the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

from service.head_limits import LimitedHttpToolsProtocol
from service.log import env_file_read_said, get_logger
from service.ports import ensure_free
from service.settings import Settings
from service.web.app import Apps, create_apps

log = get_logger("cubehook.web")
# The admin listener serves the kubelet's probes and a Prometheus or two: a few at a time.
ADMIN_LIMIT_CONCURRENCY = 16


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to ``serve``: two servers each installing their
    handlers with signal.signal would take them from each other."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def configs(settings: Settings, apps: Apps) -> list[uvicorn.Config]:
    """The public listener's config, then the admin one's (none when CUBEHOOK_ADMIN_PORT is 0)."""
    common: dict[str, Any] = {
        "log_config": None,  # logging is ours (service.log): one format, redacted
        "access_log": settings.access_log,
        "loop": "auto",
        "http": LimitedHttpToolsProtocol.with_limits(settings.max_head_bytes, settings.head_timeout_seconds),
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
    }
    found = [
        uvicorn.Config(
            apps.public,
            host=settings.host,
            port=settings.port,
            limit_concurrency=settings.limit_concurrency,
            **common,
        )
    ]
    if settings.admin_port:
        found.append(
            uvicorn.Config(
                apps.admin,
                host=settings.admin_host,
                port=settings.admin_port,
                limit_concurrency=ADMIN_LIMIT_CONCURRENCY,
                lifespan="off",  # the public app's lifespan owns the shared clients
                **common,
            )
        )
    return found


def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM. Raises ConfigError (before binding) without a secret, or for
    a port that cannot be listened on."""
    apps = create_apps(settings)
    ensure_free(settings.host, settings.port, "CUBEHOOK_PORT")
    if settings.admin_port:
        ensure_free(settings.admin_host, settings.admin_port, "CUBEHOOK_ADMIN_PORT")
    said = env_file_read_said()
    log.info("web.starting", port=settings.port, admin_port=settings.admin_port, env_file=said)
    if settings.decision_keys and not settings.allow_insecure_transport:  # a development run shares one file
        log.warning(
            "web.holds_decision_keys",
            hint="CUBEHOOK_DECISION_KEYS is for the workers and the console only: the web never uses it, "
            "and whoever holds the web's credentials must not be able to seal a decision",
        )
    servers = [_Server(config) for config in configs(settings, apps)]
    with asyncio.Runner(loop_factory=servers[0].config.get_loop_factory()) as runner:
        runner.run(serve(servers))


async def serve(servers: list[_Server]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.force_exit = server.should_exit  # a second signal: stop waiting for requests
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.ensure_future(_serve_one(server)) for server in servers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:  # one has stopped: so do the others, shutting down in order
            server.should_exit = True
        codes = await asyncio.gather(*tasks)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    failed = [code for code in codes if code]
    if failed:
        raise SystemExit(failed[0])


async def _serve_one(server: _Server) -> int:
    """Serve; the exit code uvicorn gave up with (it calls sys.exit when it cannot bind), else 0.
    Caught here, so that the other server still shuts down, and its app's lifespan with it."""
    try:
        await server.serve()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
