"""Develop: `cubehook dev` (what `make run` runs), `cubehook simulate` (and `simulate play`),
`cubehook send-event`, and the two processes `cubehook dev` starts besides web and worker (`sink`,
`demo`).

All of them run code of the dev package, which the production image leaves out: without it this
module does not import, and the CLI says these commands need the dev extra.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import IO

import click
import httpx2

from cubehook_cli.base import settings
from cubehook_dev.simulator.scenarios import Preset
from cubehook_dev.simulator.world import SessionEventStyle
from service.errors import ConfigError
from service.log import configure_logging

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"


@click.command()
def dev() -> None:
    """Start the whole system locally (what `make run` does) and play a short demo.

    Redis (embedded unless CUBEHOOK_REDIS_URL), the ComplyCube simulator, web and worker, with the
    simulator's webhooks wired to the web process. Where everything is goes to var/dev.env, which
    its processes read, and other commands with CUBEHOOK_ENV_FILE=var/dev.env. Ctrl-C stops every
    process it started, in order.
    """
    from cubehook_dev.dev import run_dev

    try:
        code = run_dev(PROCFILE)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8100, show_default=True)
@click.option(
    "--api-key", default="test_simulator_key", show_default=True, help="Authorization value to expect."
)
@click.option("--webhook-url", default=None, help="Subscribe this URL to every event from the start.")
@click.option(
    "--webhook-secret", default=None, help="[first of CUBEHOOK_WEBHOOK_SECRETS, else a fixed dev value]"
)
@click.option("--seed", type=int, default=None, help="Makes ids and faults reproducible [random].")
@click.option(
    "--step-seconds", type=float, default=0.0, show_default=True, help="Pause between status changes."
)
@click.option(
    "--retry-scale", type=float, default=1.0, show_default=True, help="Shrinks ComplyCube's retry delays."
)
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
@click.option("--latency-jitter-ms", type=float, default=0.0, show_default=True)
@click.option("--rate-429", type=float, default=0.0, show_default=True)
@click.option("--rate-500", type=float, default=0.0, show_default=True)
@click.option("--rate-timeout", type=float, default=0.0, show_default=True)
@click.option("--timeout-seconds", type=float, default=30.0, show_default=True)
@click.option("--duplicate-rate", type=float, default=0.0, show_default=True)
@click.option("--reorder-rate", type=float, default=0.0, show_default=True)
@click.option(
    "--session-event-style",
    type=click.Choice([style.value for style in SessionEventStyle]),
    default=SessionEventStyle.DOTTED.value,
    show_default=True,
    help="Session events as workflow.session.* with resourceType workflow.session (dotted), the same "
    "without resourceType (dotted-bare), or as workflowSession.* (camel).",
)
@click.pass_context
def simulate(
    ctx: click.Context,
    /,
    host: str,
    port: int,
    api_key: str,
    webhook_url: str | None,
    webhook_secret: str | None,
    step_seconds: float,
    retry_scale: float,
    session_event_style: str,
    **faults: object,
) -> None:
    """Serve a local ComplyCube: its API, signed webhooks, scenarios and injected faults. Or, with
    `play`, play a session in the one `cubehook dev` runs."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn
    from pydantic import ValidationError

    from cubehook_dev.simulator.app import SimConfig, create_simulator_app
    from cubehook_dev.simulator.faults import FaultConfig

    if faults["seed"] is None:
        # A fresh seed per run: a fixed one would replay the same event ids into a kept Redis.
        faults["seed"] = secrets.randbits(32)
    try:
        fault_config = FaultConfig.model_validate(faults)
    except ValidationError as exc:
        raise click.BadParameter(str(exc)) from None
    loaded = settings()
    if webhook_secret is None:  # in `cubehook dev`, sign with the secret the web process checks
        configured = loaded.webhook_secrets
        webhook_secret = configured[0].get_secret_value() if configured else SimConfig.webhook_secret
    config = SimConfig(
        api_key=api_key,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        step_seconds=step_seconds,
        retry_scale=retry_scale,
        faults=fault_config,
        session_events=SessionEventStyle(session_event_style),
    )
    configure_logging(loaded)
    uvicorn.run(create_simulator_app(config), host=host, port=port, log_config=None, access_log=False)


@simulate.command("play")
@click.option(
    "--preset",
    type=click.Choice([preset.value for preset in Preset]),
    default=Preset.CLEAR.value,
    show_default=True,
    help="What the session turns out as (pending_check is decided only after its re-checks).",
)
@click.option(
    "--no-wait", is_flag=True, help="Print the session id and return; do not wait for the decision."
)
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=60, show_default=True, help="Seconds to wait."
)
def simulate_play(preset: str, no_wait: bool, timeout: float) -> None:
    """Play a session in the simulator `cubehook dev` runs: it sends the webhooks as ComplyCube
    would. Prints the session id, waits for the decision and prints it with the history command."""
    from cubehook_dev.play import play

    play(settings(), preset, not no_wait, timeout)


@click.command("send-event")
@click.argument("file", type=click.File("rb"), required=False)
@click.option(
    "--url", default=None, help="[the web process of the settings: http://127.0.0.1:CUBEHOOK_PORT/...]"
)
@click.option("--secret", default=None, help="Signing secret [first of CUBEHOOK_WEBHOOK_SECRETS].")
@click.option("--session", "session_id", default=None, help="Workflow session id (builds the event).")
@click.option("--type", "event_type", default="workflow.session.completed", show_default=True)
@click.option(
    "--resource-type",
    default=None,
    help='resourceType [the start of --type that names a resource, e.g. workflow.session]; "" leaves it out.',
)
@click.option("--event-id", default=None, help="Event id (default: random); reuse one to test duplicates.")
def send_event(
    file: IO[bytes] | None,
    url: str,
    secret: str | None,
    session_id: str | None,
    event_type: str,
    resource_type: str | None,
    event_id: str | None,
) -> None:
    """Sign and POST one event: FILE as it is (e.g. a fixture), or one built from the flags. The
    worker then reads the session from ComplyCube's API (the simulator's, under `cubehook dev`):
    an event names a session, it never tells its outcome."""
    from cubehook_dev.sender import build_event, send

    if (file is None) == (session_id is None):
        raise click.UsageError("give either FILE or --session")
    loaded = settings()
    if url is None:
        host = "127.0.0.1" if loaded.host in ("0.0.0.0", "::") else loaded.host  # noqa: S104 - a comparison
        url = f"http://{host}:{loaded.port}/webhooks/complycube"
    if secret is None:
        configured = loaded.webhook_secrets
        if not configured:
            raise click.UsageError("no --secret and no CUBEHOOK_WEBHOOK_SECRETS to sign with")
        secret = configured[0].get_secret_value()
    if file is not None:
        body = file.read()
    else:
        assert session_id is not None
        body = build_event(
            session_id=session_id,
            event_type=event_type,
            resource_type=resource_type,
            event_id=event_id,
        )
    try:
        response = send(url, body, secret)
    except httpx2.HTTPError as exc:
        raise click.ClickException(f"could not reach {url}: {type(exc).__name__}: {exc}") from None
    click.echo(f"{response.status_code} {response.reason_phrase}")
    click.echo(response.text)
    if not response.is_success:
        sys.exit(1)


@click.command(hidden=True)
@click.option("--port", type=int, required=True)
@click.option(
    "--secret", envvar="DEV_DECISION_WEBHOOK_SECRET", required=True, help="whsec_... to verify with."
)
def sink(port: int, secret: str) -> None:
    """Receive and print decision webhooks and alerts (run by `cubehook dev`)."""
    import uvicorn

    from cubehook_dev.sink import create_sink_app

    configure_logging(settings())
    uvicorn.run(create_sink_app(secret), host="127.0.0.1", port=port, log_config=None, access_log=False)


@click.command(hidden=True)
@click.option("--simulator", "simulator_url", required=True)
@click.option("--admin", "admin_url", required=True, help="The web process's admin listener.")
@click.option("--show-secret", is_flag=True, help="The webhook secret was made for this run: print it.")
def demo(simulator_url: str, admin_url: str, show_secret: bool) -> None:
    """Play the demo scenarios and print what happens (run by `cubehook dev`)."""
    from cubehook_dev.demo import watch

    watch(settings(), simulator_url, admin_url, show_secret)
