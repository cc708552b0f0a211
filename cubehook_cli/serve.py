"""Serve: the processes of the Procfile, `cubehook web` and `cubehook worker`."""

from __future__ import annotations

import click

from cubehook_cli.base import PORT, runtime, settings
from service.errors import ConfigError
from service.log import configure_logging


@click.command()
@click.option("--host", default=None, help="Public interface [CUBEHOOK_HOST, 127.0.0.1].")
@click.option("--port", type=PORT, default=None, help="Public port [CUBEHOOK_PORT, 8000].")
@click.option("--admin-host", default=None, help="Admin interface [CUBEHOOK_ADMIN_HOST, 127.0.0.1].")
@click.option("--admin-port", type=PORT, help="Admin port, 0: off [CUBEHOOK_ADMIN_PORT, 9000].")
def web(host: str | None, port: int | None, admin_host: str | None, admin_port: int | None) -> None:
    """Serve POST /webhooks/complycube (and /healthz) on the public listener, and /healthz,
    /readyz, /metrics and /openapi.json on the admin listener. One process: scale with replicas."""
    from service.web.serve import run

    options = {"host": host, "port": port, "admin_host": admin_host, "admin_port": admin_port}
    loaded = settings(process=True).model_copy(update={k: v for k, v in options.items() if v is not None})
    configure_logging(loaded)
    try:
        run(loaded)  # fails before binding when no secret is set
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on the cubehook queue, with RQ's scheduler for retries and re-checks, the
    recovery sweep for the jobs of dead workers, and the maintenance clock."""
    from workers import runtime as worker_runtime
    from workers.outages import HEALTH
    from workers.worker import run

    HEALTH.speaks = True  # the worker says each outage once; a command's own error line says it
    loaded = settings(process=True)
    if loaded.worker_metrics_port:  # first: the gauges say so while the worker waits for Redis
        from prometheus_client import start_http_server

        from service.metrics import WORKER
        from service.ports import taken

        try:  # two workers on one host need a port each
            start_http_server(loaded.worker_metrics_port, addr=loaded.admin_host, registry=WORKER)
        except OSError as exc:
            said = taken(loaded.admin_host, loaded.worker_metrics_port, "CUBEHOOK_WORKER_METRICS_PORT", exc)
            raise click.ClickException(said) from None
    built = runtime(wait=not burst)  # a worker rides out outages, from its start on
    worker_runtime.install(built)
    try:
        run(built.settings, built, burst)
    finally:
        built.close()
