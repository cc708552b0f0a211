"""Operate: one session's story or a fresh look at it, a backfill, the webhook watchdog, the queue's
status and the audit trail's schema. The dead-letter queue, the quarantine and the audit trail's
personal data have their own modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cubehook_cli.base import audit_trail, redis, runtime, settings
from service.errors import NoAuditTrail, UpstreamNotFound

if TYPE_CHECKING:
    from service.settings import Settings


@click.command()
def status() -> None:
    """Queue depths, workers alive, the oldest waiting job, failures, the last event seen.
    Reads Redis and the audit trail only."""
    from workers.operations import status as read_status

    loaded = settings()
    try:
        audit = audit_trail(loaded)
    except NoAuditTrail:
        audit = None  # nothing processed yet: the queue's figures still tell
    for key, value in read_status(loaded, redis(loaded), audit).items():
        click.echo(f"{key + ':':<24}{value}")


@click.command()
@click.argument("session_id")
def history(session_id: str) -> None:
    """Print everything on record about a session: events, snapshots, decisions, action attempts,
    then the events about it still waiting in Redis (deferred, put back, queued), which are not on
    record yet. Exits 1 when nothing names the session."""
    from workers.judging.explain import format_history

    loaded = settings()
    records = audit_trail(loaded).history(session_id)
    waiting = _waiting(loaded, session_id)
    if not records and not waiting:
        raise click.ClickException(
            f"nothing on record for session {session_id}: no event, snapshot or decision names it "
            "(check the id; `cubehook status` shows when the last event came)"
        )
    click.echo(format_history(session_id, records) if records else f"session {session_id}")
    for line in waiting:
        click.echo(line)


def _waiting(loaded: Settings, session_id: str) -> list[str]:
    """A line for each event about the session waiting in Redis; none when Redis is away (the
    audit trail answers without it: after `make run` stopped, say)."""
    from redis.exceptions import RedisError

    from service.events import format_time
    from service.rq_jobs import rq_queue
    from workers.triggers import waiting_events

    try:
        found = waiting_events(rq_queue(loaded.queue_name, redis(loaded)), session_id)
    except RedisError:
        return []
    lines = []
    for event in found:
        head = f"waiting   {event.event_id} {event.event_type}:"
        if event.until is None:
            lines.append(f"{head} queued, a worker takes it next (on record once looked at)")
        elif event.deferred:
            lines.append(
                f"{head} deferred until {format_time(event.until)}, when the session's own later "
                "events have most likely covered it (on record then)"
            )
        else:
            until = format_time(event.until)
            lines.append(f"{head} put back until {until} (an outage, or ComplyCube's rate limit)")
    return lines


@click.command()
@click.argument("session_id")
def resync(session_id: str) -> None:
    """Fetch and process one session now (its decision is made once per state, as always)."""
    from service.ids import SHAPE, is_complycube_id

    if not is_complycube_id(session_id):
        raise click.BadParameter(f"not a ComplyCube id ({SHAPE})", param_hint="SESSION_ID")
    rt = runtime()
    try:
        outcome = rt.processor.process(session_id, trigger="resync")
    except UpstreamNotFound:
        raise click.ClickException(
            f"ComplyCube knows no session {session_id} (404): check the id, and that "
            "CUBEHOOK_COMPLYCUBE_API_KEY belongs to its account (test_ sandbox, live_ live)"
        ) from None
    click.echo(f"session {session_id}: {outcome.result} {outcome.outcome or outcome.status or ''}".rstrip())


@click.command()
@click.option("--since", required=True, help="ISO time, e.g. 2026-11-28T00:00:00Z.")
def backfill(since: str) -> None:
    """Queue every session updated since --since whose latest state has no decision yet."""
    from service.events import parse_time
    from workers.operations import backfill as run_backfill

    moment = parse_time(since)
    if moment is None:
        raise click.BadParameter(f"not a time: {since!r}", param_hint="--since")
    report = run_backfill(runtime(), moment)
    click.echo(f"{report.listed} session(s) listed, {len(report.queued)} queued for processing")
    if report.filter_missed:
        click.echo(
            f"ComplyCube's updatedAfter filter missed {report.filter_missed} session(s) the unfiltered "
            "list shows: see the runbook 'Backfill filter missed sessions' in docs/operations.md",
            err=True,
        )
    for session_id in report.queued:
        click.echo(f"  {session_id}")


@click.command()
def watchdog() -> None:
    """Check the webhook subscription now (what maintenance does every interval)."""
    from datetime import timedelta

    from workers.operations import watchdog as run_watchdog

    rt = runtime()
    loaded = rt.settings
    report = run_watchdog(
        rt, loaded.public_webhook_url, loaded.webhook_auto_enable,
        timedelta(seconds=loaded.backfill_lookback_seconds),
    )  # fmt: skip
    click.echo(
        f"disabled: {', '.join(report.disabled) or 'none'}; re-enabled: {', '.join(report.enabled) or 'none'}"
    )
    if report.backfill:
        click.echo(f"backfill: {len(report.backfill.queued)} session(s) queued")


@click.group()
def db() -> None:
    """The audit trail's database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (workers also do this when they start)."""
    from service.log import scrub_text
    from workers.audit.store import AuditStore

    url = settings().database_url
    store = AuditStore.from_url(url)
    before, head = store.revisions()
    where = f"the audit trail at {scrub_text(url)}"
    if before == head:
        click.echo(f"{where} is already up to date (migration {head}): nothing to do")
        return
    store.migrate()
    if before is None:
        from sqlalchemy import inspect

        tables = [name for name in inspect(store.engine).get_table_names() if name != "alembic_version"]
        click.echo(f"created {where}: {len(tables)} tables, at migration {head}")
    else:
        click.echo(f"upgraded {where} from migration {before} to {head}")
