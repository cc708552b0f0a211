"""The ``cubehook`` command: each subcommand is an entry point that builds the settings once."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import click
import httpx2

from service.errors import ConfigError, QueueUnavailable
from service.log import configure_logging
from service.settings import Settings, load_settings
from service.simulator.world import SessionEventStyle

if TYPE_CHECKING:
    from service.intake import Intake, Replayed
    from workers.audit import AuditStore
    from workers.rules import Rules
    from workers.runtime import Runtime

T = TypeVar("T")

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"
PORT = click.IntRange(0, 65535)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """cubehook: ComplyCube workflow-session webhooks in, onboarding decisions out."""


@main.command()
@click.option("--host", default=None, help="Public interface [CUBEHOOK_HOST, 127.0.0.1].")
@click.option("--port", type=PORT, default=None, help="Public port [CUBEHOOK_PORT, 8000].")
@click.option("--admin-host", default=None, help="Admin interface [CUBEHOOK_ADMIN_HOST, 127.0.0.1].")
@click.option("--admin-port", type=PORT, help="Admin port, 0: off [CUBEHOOK_ADMIN_PORT, 9000].")
def web(host: str | None, port: int | None, admin_host: str | None, admin_port: int | None) -> None:
    """Serve POST /webhooks/complycube (and /healthz) on the public listener, and /healthz,
    /readyz, /metrics and /openapi.json on the admin listener. One process: scale with replicas."""
    from service.serve import run

    options = {"host": host, "port": port, "admin_host": admin_host, "admin_port": admin_port}
    settings = _settings().model_copy(update={k: v for k, v in options.items() if v is not None})
    configure_logging(settings)
    try:
        run(settings)  # fails before binding when no secret is set
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on the cubehook queue, with RQ's scheduler for retries and re-checks, the
    recovery sweep for the jobs of dead workers, and the maintenance clock."""
    from workers import runtime
    from workers.worker import run

    settings = _settings()
    configure_logging(settings)
    try:
        built = runtime.Runtime.build(settings, os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    runtime.install(built)
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.admin_host)
    try:
        run(settings, built, burst)
    finally:
        built.close()


@main.command()
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
def simulate(
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
    """Serve a local ComplyCube: its API, signed webhooks, scenarios and injected faults."""
    import uvicorn
    from pydantic import ValidationError

    from service.simulator.app import SimConfig, create_simulator_app
    from service.simulator.faults import FaultConfig

    if faults["seed"] is None:
        # A fresh seed per run: a fixed one would replay the same event ids into a kept Redis.
        faults["seed"] = secrets.randbits(32)
    try:
        fault_config = FaultConfig.model_validate(faults)
    except ValidationError as exc:
        raise click.BadParameter(str(exc)) from None
    settings = _settings()
    if webhook_secret is None:  # in `cubehook dev`, sign with the secret the web process checks
        configured = settings.webhook_secrets
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
    configure_logging(settings)
    uvicorn.run(create_simulator_app(config), host=host, port=port, log_config=None, access_log=False)


@main.command(hidden=True)
@click.option("--port", type=int, required=True)
@click.option(
    "--secret", envvar="DEV_DECISION_WEBHOOK_SECRET", required=True, help="whsec_... to verify with."
)
def sink(port: int, secret: str) -> None:
    """Receive and print decision webhooks and alerts (run by `cubehook dev`)."""
    import uvicorn

    from service.simulator.sink import create_sink_app

    configure_logging(_settings())
    uvicorn.run(create_sink_app(secret), host="127.0.0.1", port=port, log_config=None, access_log=False)


@main.command("send-event")
@click.argument("file", type=click.File("rb"), required=False)
@click.option("--url", default="http://127.0.0.1:8000/webhooks/complycube", show_default=True)
@click.option("--secret", default=None, help="Signing secret [first of CUBEHOOK_WEBHOOK_SECRETS].")
@click.option("--session", "session_id", default=None, help="Workflow session id (builds the event).")
@click.option("--type", "event_type", default="workflow.session.completed", show_default=True)
@click.option(
    "--resource-type",
    default=None,
    help='resourceType [the start of --type that names a resource, e.g. workflow.session]; "" leaves it out.',
)
@click.option("--outcome", default=None, help="Outcome in the payload summary, e.g. clear.")
@click.option("--event-id", default=None, help="Event id (default: random); reuse one to test duplicates.")
def send_event(
    file: IO[bytes] | None,
    url: str,
    secret: str | None,
    session_id: str | None,
    event_type: str,
    resource_type: str | None,
    outcome: str | None,
    event_id: str | None,
) -> None:
    """Sign and POST one event: FILE as it is (e.g. a fixture), or one built from the flags."""
    from service.sender import build_event, send

    if (file is None) == (session_id is None):
        raise click.UsageError("give either FILE or --session")
    if secret is None:
        configured = _settings().webhook_secrets
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
            outcome=outcome,
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


@main.command()
def dev() -> None:
    """Start the whole system locally (what `make run` does) and play a short demo.

    Redis (embedded unless CUBEHOOK_REDIS_URL), the ComplyCube simulator, web and worker, with the
    simulator's webhooks wired to the web process. Ctrl-C stops every process it started.
    """
    from service.demo import run_dev

    sys.exit(run_dev(PROCFILE))


@main.command(hidden=True)
@click.option("--simulator", "simulator_url", required=True)
@click.option("--admin", "admin_url", required=True, help="The web process's admin listener.")
def demo(simulator_url: str, admin_url: str) -> None:
    """Play the demo scenarios and print what happens (run by `cubehook dev`)."""
    from service.demo import watch

    watch(_settings(), simulator_url, admin_url)


def _rules_from(path: Path | None, settings: Settings) -> Rules:
    from workers.rules import load_rules

    try:
        return load_rules(path or settings.rules_file, os.environ, settings.allow_insecure_transport)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def rules() -> None:
    """Check a rules file, or explain what it would do for a session."""


@rules.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_check(file: Path) -> None:
    """Validate FILE: its TOML, its fields, and that the environment variables it names are set."""
    loaded = _rules_from(file, _settings())
    click.echo(f"{file}: ok, {len(loaded.file.action)} action(s), {len(loaded.file.rule)} rule(s)")


@rules.command("explain")
@click.argument("session_file", type=click.File("rb"))
@click.argument("check_files", type=click.File("rb"), nargs=-1)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Rules file [CUBEHOOK_RULES_FILE, else the built-in default].",
)
def rules_explain(
    session_file: IO[bytes], check_files: tuple[IO[bytes], ...], rules_file: Path | None
) -> None:
    """Reconcile SESSION.json with CHECK.json files (ComplyCube's JSON) and show what would be
    decided and which actions would run, and why. Nothing is sent."""
    from workers.explain import explain

    loaded = _rules_from(rules_file, _settings())
    try:
        click.echo(explain(session_file.read(), [f.read() for f in check_files], loaded))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("session_id")
def history(session_id: str) -> None:
    """Print everything on record about a session: events, snapshots, decisions, action attempts."""
    from workers.audit import AuditStore
    from workers.explain import format_history

    settings = _settings()
    click.echo(format_history(session_id, AuditStore.from_url(settings.database_url).history(session_id)))


@main.group()
def db() -> None:
    """The audit trail's database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (workers also do this when they start)."""
    from workers.audit import AuditStore

    settings = _settings()
    AuditStore.from_url(settings.database_url).migrate()
    click.echo("database is up to date")


@main.group()
def audit() -> None:
    """Personal data on the audit trail: retention and erasure. They need only the database."""


def _audit_store(settings: Settings) -> AuditStore:
    from workers.audit import AuditStore

    store = AuditStore.from_url(settings.database_url)
    if store.needs_migration():
        raise click.ClickException("the audit trail's schema is behind: run `cubehook db upgrade` first")
    return store


def _operator() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's numeric user)
        return "unknown"


def _summary(lines: list[str], dry_run: bool) -> None:
    click.echo("\n".join([*lines, "dry run: nothing was changed"] if dry_run else lines))


_requested_by = click.option("--by", "requested_by", default=None, help="Who asks, for the record [OS user].")
_dry_run = click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")


@audit.command("purge")
@click.option("--before", required=True, help="A date or ISO time, e.g. 2026-01-01.")
@_requested_by
@_dry_run
def audit_purge(before: str, requested_by: str | None, dry_run: bool) -> None:
    """Delete events and snapshots recorded before --before, and decision records decided before
    it unless the legal hold (CUBEHOOK_LEGAL_HOLD_DAYS) keeps them."""
    from datetime import UTC, datetime

    from service.events import parse_time
    from workers.retention import purge

    moment = parse_time(before)
    if moment is None or moment > datetime.now(UTC):
        raise click.BadParameter(f"not a past date or time: {before!r}", param_hint="--before")
    settings = _settings()
    report = purge(
        _audit_store(settings), moment, settings.legal_hold_days, requested_by or _operator(), dry_run
    )
    _summary(report.lines(moment), dry_run)


@audit.command("erase")
@click.option("--client-id", required=True, help="ComplyCube's client id.")
@_requested_by
@_dry_run
def audit_erase(client_id: str, requested_by: str | None, dry_run: bool) -> None:
    """Redact the personal data in a client's snapshots; delete its decision records past the
    legal hold (CUBEHOOK_LEGAL_HOLD_DAYS) and keep the others. Recorded, without the data."""
    from workers.retention import erase

    settings = _settings()
    report = erase(
        _audit_store(settings), client_id, settings.legal_hold_days, requested_by or _operator(), dry_run
    )
    _summary(report.lines(client_id), dry_run)


def _runtime() -> Runtime:
    from workers.runtime import Runtime

    settings = _settings()
    configure_logging(settings)
    try:
        return Runtime.build(settings, os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("session_id")
def resync(session_id: str) -> None:
    """Fetch and process one session now (its decision is made once per state, as always)."""
    rt = _runtime()
    outcome = rt.processor.process(session_id, trigger="resync")
    click.echo(f"session {session_id}: {outcome.result} {outcome.outcome or outcome.status or ''}".rstrip())


@main.command()
@click.option("--since", required=True, help="ISO time, e.g. 2026-11-28T00:00:00Z.")
def backfill(since: str) -> None:
    """Queue every session updated since --since whose latest state has no decision yet."""
    from service.events import parse_time
    from workers.operations import backfill as run_backfill

    moment = parse_time(since)
    if moment is None:
        raise click.BadParameter(f"not a time: {since!r}", param_hint="--since")
    report = run_backfill(_runtime(), moment)
    click.echo(f"{report.listed} session(s) listed, {len(report.queued)} queued for processing")
    if report.filter_missed:
        click.echo(
            f"ComplyCube's updatedAfter filter missed {report.filter_missed} session(s) the unfiltered "
            "list shows: see the README's runbook, 'Backfill filter missed sessions'",
            err=True,
        )
    for session_id in report.queued:
        click.echo(f"  {session_id}")


@main.command()
def watchdog() -> None:
    """Check the webhook subscription now (what maintenance does every interval)."""
    from datetime import timedelta

    from workers.operations import watchdog as run_watchdog

    rt = _runtime()
    settings = rt.settings
    report = run_watchdog(
        rt, settings.public_webhook_url, settings.webhook_auto_enable,
        timedelta(seconds=settings.backfill_lookback_seconds),
    )  # fmt: skip
    click.echo(
        f"disabled: {', '.join(report.disabled) or 'none'}; re-enabled: {', '.join(report.enabled) or 'none'}"
    )
    if report.backfill:
        click.echo(f"backfill: {len(report.backfill.queued)} session(s) queued")


@main.command()
def status() -> None:
    """Queue depths, workers alive, the oldest waiting job, failures, the last event seen."""
    from workers.operations import status as read_status

    for key, value in read_status(_runtime()).items():
        click.echo(f"{key + ':':<24}{value}")


@main.group()
def quarantine() -> None:
    """Signed deliveries that could not be read, kept whole: list, show, replay after an upgrade.
    These need Redis and the webhook secrets only."""


def _with_intake(action: Callable[[Intake], Awaitable[T]]) -> T:
    from service.intake import run_with_intake

    settings = _settings()
    configure_logging(settings)
    try:
        return run_with_intake(settings, action)
    except (ConfigError, QueueUnavailable) as exc:
        raise click.ClickException(str(exc)) from None


@quarantine.command("list")
def quarantine_list() -> None:
    """Every item held, oldest first: id, when kept, size, why."""
    from service.events import format_time

    items = _with_intake(lambda intake: intake.quarantine.items())
    if not items:
        click.echo("the quarantine is empty")
    for item in items:
        click.echo(f"{item.id}  {format_time(item.kept_at)}  {item.size} bytes  {item.flaw}: {item.reason}")


@quarantine.command("show")
@click.argument("item_id")
@click.option(
    "--raw", is_flag=True, help="Write the stored body to stdout, byte for byte (it may hold personal data)."
)
def quarantine_show(item_id: str, raw: bool) -> None:
    """One item: when and why it was kept, its size and digest (with --raw, its body)."""
    import hashlib

    from service.events import format_time

    item = _with_intake(lambda intake: intake.quarantine.get(item_id))
    if item is None:
        raise click.ClickException(f"no quarantined delivery {item_id}")
    if raw:
        click.echo(item.body, nl=False)  # bytes go out as they are
        return
    click.echo(f"id:          {item.id}\nkept at:     {format_time(item.kept_at)}")
    click.echo(f"size:        {item.size} bytes, sha256 {hashlib.sha256(item.body).hexdigest()}")
    click.echo(f"reason:      {item.flaw}: {item.reason}\nreplayed at: {item.replayed_at or 'never'}")
    click.echo("signature:   kept as received (not shown)")


@quarantine.command("replay")
@click.argument("item_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every item held, oldest first.")
def quarantine_replay(item_id: str | None, replay_all: bool) -> None:
    """Put items through the intake again (signature, reading, de-duplication, queue): one now
    read leaves the quarantine; one that still cannot be read, or whose signature no longer
    verifies, stays and says why. Exits 1 when any stays."""
    if (item_id is None) == (not replay_all):
        raise click.UsageError("give an ID or --all")

    async def replay(intake: Intake) -> list[Replayed]:
        ids = [item.id for item in await intake.quarantine.items()] if replay_all else [item_id or ""]
        return [await intake.replay(i) for i in ids]

    results = _with_intake(replay)
    for result in results:
        click.echo(f"{result.item_id}  {result.result}{'  ' + result.reason if result.reason else ''}")
    stayed = [r for r in results if r.result in ("kept", "missing")]
    click.echo(f"{len(results) - len(stayed)} of {len(results)} item(s) replayed and out of the quarantine")
    if stayed:
        sys.exit(1)


@main.group()
def dlq() -> None:
    """The dead-letter queue: failed jobs (events, sessions, actions) and how to replay them."""


@dlq.command("list")
def dlq_list() -> None:
    from service.rq_jobs import rq_queue
    from workers.operations import dead_letters

    rt = _runtime()
    letters = dead_letters(rq_queue(rt.settings.queue_name, rt.redis))
    if not letters:
        click.echo("the dead-letter queue is empty")
    for letter in letters:
        click.echo(
            f"{letter.job_id}  {letter.kind}  {letter.summary}  attempts {letter.attempts}  {letter.error}"
        )


@dlq.command("show")
@click.argument("job_id")
def dlq_show(job_id: str) -> None:
    from service.rq_jobs import rq_queue
    from workers.operations import dead_letter

    rt = _runtime()
    queue = rq_queue(rt.settings.queue_name, rt.redis)
    job = queue.fetch_job(job_id)
    if job is None or job_id not in queue.failed_job_registry:
        raise click.ClickException(f"no failed job {job_id}")
    letter = dead_letter(job)
    click.echo(f"job:       {letter.job_id}\nkind:      {letter.kind}\nfor:       {letter.summary}")
    click.echo(f"attempts:  {letter.attempts}\nfailed at: {letter.failed_at}\nerror:     {letter.error}")
    if letter.kind == "action":
        for entry in rt.audit.ledger(job.kwargs["decision_id"]):
            if entry["action"] == job.kwargs["action"]:
                click.echo(
                    f"ledger:    {entry['state']}, {entry['attempts']} attempt(s), {entry['last_error']}"
                )


@dlq.command("replay")
@click.argument("job_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed job.")
def dlq_replay(job_id: str | None, replay_all: bool) -> None:
    """Re-queue failed jobs; decisions stay once per state and actions once in effect."""
    from service.rq_jobs import rq_queue
    from workers.operations import replay_job

    if (job_id is None) == (not replay_all):
        raise click.UsageError("give a JOB_ID or --all")
    rt = _runtime()
    queue = rq_queue(rt.settings.queue_name, rt.redis)
    ids = queue.failed_job_registry.get_job_ids() if replay_all else [job_id or ""]
    replayed = [i for i in ids if replay_job(rt, queue, i)]
    click.echo(f"{len(replayed)} job(s) re-queued")
    if not replay_all and not replayed:
        sys.exit(1)
