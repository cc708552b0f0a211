"""The ``cubehook`` command: each subcommand is an entry point that builds the settings once."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click

from service.errors import ConfigError
from service.log import configure_logging, get_logger
from service.settings import Settings, load_settings

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """cubehook: ComplyCube workflow-session webhooks in, onboarding decisions out."""


@main.command()
@click.option("--host", default=None, help="Interface to bind [CUBEHOOK_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [CUBEHOOK_PORT, 8000].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes.")
def web(host: str | None, port: int | None, workers: int) -> None:
    """Serve POST /webhooks/complycube, /healthz and /readyz."""
    import uvicorn

    from service.app import create_app

    settings = _settings()
    configure_logging(settings)
    try:
        app = create_app(settings)  # fails here, before binding, when no secret is set
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    options = {
        "host": host or settings.host,
        "port": settings.port if port is None else port,
        "log_config": None,  # logging is ours (service.log): one format, redacted
        "access_log": settings.access_log,
        "loop": "auto",
        "http": "auto",
    }
    if workers == 1:
        uvicorn.run(app, **options)  # type: ignore[arg-type]
    else:
        # Each process builds its own Settings and app from the environment.
        uvicorn.run("service.app:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]


@main.command()
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on the cubehook queue, with RQ's scheduler for retries."""
    from rq import Queue, Worker

    from service.queue import redis_client

    settings = _settings()
    configure_logging(settings)
    connection = redis_client(settings)
    queue = Queue(settings.queue_name, connection=connection)
    get_logger("cubehook.worker").info("worker.starting", queue=settings.queue_name, burst=burst)
    Worker([queue], connection=connection).work(
        burst=burst, with_scheduler=True, logging_level=settings.log_level.upper()
    )


@main.command()
def dev() -> None:
    """Start the whole system locally (what `make run` does): Redis, web and worker.

    Uses CUBEHOOK_REDIS_URL when set, else an embedded Redis stopped on exit; uses
    CUBEHOOK_WEBHOOK_SECRETS when set, else a fresh development secret, printed here.
    """
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    from service.devredis import EmbeddedRedis

    env = dict(os.environ)
    # Children find the `cubehook` script of this very interpreter, even outside an activated venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("CUBEHOOK_LOG_FORMAT", "console")
    env.setdefault("PORT", env.get("CUBEHOOK_PORT", "8000"))
    embedded = None if env.get("CUBEHOOK_REDIS_URL") else EmbeddedRedis()
    if embedded is not None:
        embedded.start()
        env["CUBEHOOK_REDIS_URL"] = embedded.url
    if env.get("CUBEHOOK_WEBHOOK_SECRETS"):
        shown = "from CUBEHOOK_WEBHOOK_SECRETS (not shown)"
    else:
        env["CUBEHOOK_WEBHOOK_SECRETS"] = shown = "dev_" + secrets.token_hex(16)
        shown += "  (generated for this run; sign test events with it)"
    click.echo(
        f"cubehook dev\n"
        f"  redis:    {env['CUBEHOOK_REDIS_URL']}{' (embedded)' if embedded else ''}\n"
        f"  endpoint: http://127.0.0.1:{env['PORT']}/webhooks/complycube\n"
        f"  secret:   {shown}\n"
        f"  Ctrl-C stops everything."
    )
    sys.stdout.flush()
    manager = Manager()
    for name, command in parse_procfile(PROCFILE.read_text()).processes.items():
        manager.add_process(name, command, env=env)
    try:
        manager.loop()
    finally:
        if embedded is not None:
            embedded.close()
    sys.exit(manager.returncode)
