"""Operate: `cubehook audit purge|erase`, personal data on the audit trail. They need only the
database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cubehook_cli.base import settings
from service.settings import Settings

if TYPE_CHECKING:
    from workers.audit.store import AuditStore


@click.group()
def audit() -> None:
    """Personal data on the audit trail: retention and erasure. They need only the database."""


def _audit_store(loaded: Settings) -> AuditStore:
    from workers.audit.store import AuditStore

    store = AuditStore.from_url(loaded.database_url)
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
    from workers.audit.retention import purge

    moment = parse_time(before)
    if moment is None:
        raise click.BadParameter(
            f"cannot read {before!r} as a date: give an ISO date or time, e.g. 2026-01-01, "
            "2026-01-01T12:00:00 or 2026-01-01T12:00:00Z (UTC unless it names a zone)",
            param_hint="--before",
        )
    if moment > datetime.now(UTC):
        raise click.BadParameter(f"{before!r} is in the future: give a past date", param_hint="--before")
    loaded = settings()
    report = purge(_audit_store(loaded), moment, loaded.legal_hold_days, requested_by or _operator(), dry_run)
    _summary(report.lines(moment), dry_run)


@audit.command("erase")
@click.option("--client-id", required=True, help="ComplyCube's client id.")
@_requested_by
@_dry_run
def audit_erase(client_id: str, requested_by: str | None, dry_run: bool) -> None:
    """Redact the personal data in a client's snapshots; delete its decision records past the
    legal hold (CUBEHOOK_LEGAL_HOLD_DAYS) and keep the others. Recorded, without the data."""
    from workers.audit.retention import erase

    loaded = settings()
    report = erase(
        _audit_store(loaded), client_id, loaded.legal_hold_days, requested_by or _operator(), dry_run
    )
    _summary(report.lines(client_id), dry_run)
