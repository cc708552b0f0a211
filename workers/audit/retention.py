"""Retention and erasure of the audit trail: ``cubehook audit purge`` and ``audit erase``, and the
retention maintenance applies. They need only the database.

Two duties pull apart here. Data protection (GDPR art. 5(1)(e), 17) says personal data goes
once it is not needed, or when the person asks. AML record keeping (the EU directives: five years
after the business relationship) says the record of the customer due diligence stays. So:

- snapshots (ComplyCube's JSON: names, extracted document data) are what carries personal data:
  a purge deletes them, an erasure redacts them (workers.audit.privacy), whatever their age;
- decision records (the decision, its reasons, its action attempts: ids, outcomes and check
  types, no names) are the AML record: neither deletes one decided less than the legal hold ago.
  Older ones go with a purge before their date, or with an erasure of their client.

Each run is recorded in ``privacy_log``: what kind, when, at whose request, the counts. An
erasure names its client by SHA-256 digest only, so the log can prove that client X was erased
(hash X, look it up) without itself naming anyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, update

from workers.audit import privacy
from workers.audit.schema import (
    action_attempts,
    action_ledger,
    decisions,
    events,
    now,
    privacy_log,
    snapshots,
)
from workers.audit.store import AuditStore


@dataclass(frozen=True)
class Held:
    """Decision records a run would have deleted but the legal hold keeps."""

    count: int
    until: datetime | None  # when the last of them leaves the hold

    def line(self) -> str:
        if not self.count:
            return "no decision record is held back by the legal hold"
        until = self.until.date().isoformat() if self.until else "?"
        return f"{self.count} decision record(s) kept under the legal hold (the last until {until})"


@dataclass(frozen=True)
class PurgeReport:
    events: int
    snapshots: int
    decisions: int  # with their action attempts and ledger entries
    held: Held

    def lines(self, before: datetime) -> list[str]:
        day = before.isoformat()
        return [
            f"deleted {self.events} event(s) and {self.snapshots} snapshot(s) recorded before {day}",
            f"deleted {self.decisions} decision record(s) decided before {day} and past the legal hold",
            self.held.line(),
        ]


@dataclass(frozen=True)
class ErasureReport:
    redacted: int  # snapshots whose personal fields were replaced by the marker now
    already: int  # snapshots of the client with nothing left to redact (erased or minimal before)
    decisions: int  # decision records past the legal hold, deleted
    held: Held

    def lines(self, client_id: str) -> list[str]:
        return [
            f"client {client_id}: redacted {self.redacted} snapshot(s), "
            f"{self.already} had nothing left to redact",
            f"deleted {self.decisions} decision record(s) past the legal hold",
            self.held.line(),
        ]


def purge(
    audit: AuditStore, before: datetime, hold_days: int, requested_by: str, dry_run: bool = False
) -> PurgeReport:
    """Delete events and snapshots recorded before ``before``, and decision records decided before
    it that are past the legal hold; one transaction (rolled back on a dry run). Logged when it
    deleted anything: maintenance runs it every interval."""
    before = before.astimezone(UTC)  # SQLite compares the stored UTC wall time as text
    cutoff = min(before, now() - timedelta(days=hold_days))
    older = decisions.c.decided_at < before
    with _transaction(audit, dry_run) as tx:
        gone_events = tx.execute(delete(events).where(events.c.recorded_at < before)).rowcount
        gone_snapshots = tx.execute(delete(snapshots).where(snapshots.c.fetched_at < before)).rowcount
        gone_decisions = _delete_decisions(tx, decisions.c.decided_at < cutoff)
        report = PurgeReport(gone_events, gone_snapshots, gone_decisions, _held(tx, older, hold_days))
        if gone_events or gone_snapshots or gone_decisions:
            _log(tx, "purge", None, requested_by, {"before": before.isoformat(), **asdict(report)})
    return report


def erase(
    audit: AuditStore, client_id: str, hold_days: int, requested_by: str, dry_run: bool = False
) -> ErasureReport:
    """Redact the personal fields of every snapshot of ``client_id``, and delete its decision
    records past the legal hold; one transaction (rolled back on a dry run), always logged."""
    cutoff = now() - timedelta(days=hold_days)
    theirs = decisions.c.client_id == client_id
    redacted = already = 0
    with _transaction(audit, dry_run) as tx:
        rows = tx.execute(
            select(snapshots.c.id, snapshots.c.session, snapshots.c.checks).where(
                snapshots.c.client_id == client_id
            )
        ).all()
        for row in rows:
            session, checks = privacy.erased(row.session, row.checks or {})
            if (session, checks) == (row.session, row.checks or {}):
                already += 1
                continue
            tx.execute(
                update(snapshots).where(snapshots.c.id == row.id).values(session=session, checks=checks)
            )
            redacted += 1
        gone = _delete_decisions(tx, theirs & (decisions.c.decided_at < cutoff))
        report = ErasureReport(redacted, already, gone, _held(tx, theirs, hold_days))
        _log(tx, "erase", digest(client_id), requested_by, asdict(report))
    return report


@contextmanager
def _transaction(audit: AuditStore, dry_run: bool) -> Iterator[Connection]:
    """One transaction, committed, or rolled back when it is a dry run: the same statements
    count what would go."""
    with audit.engine.connect() as connection, connection.begin() as transaction:
        yield connection
        if dry_run:
            transaction.rollback()


def digest(client_id: str) -> str:
    return hashlib.sha256(client_id.encode()).hexdigest()


def _delete_decisions(tx: Connection, which: ColumnElement[bool]) -> int:
    """Decision records and what hangs on them: action attempts, ledger entries."""
    doomed = select(decisions.c.decision_id).where(which)
    tx.execute(delete(action_attempts).where(action_attempts.c.decision_id.in_(doomed)))
    tx.execute(delete(action_ledger).where(action_ledger.c.decision_id.in_(doomed)))
    return tx.execute(delete(decisions).where(which)).rowcount


def _held(tx: Connection, which: ColumnElement[bool], hold_days: int) -> Held:
    """What is left of ``which`` after the deletion: every row of it is inside the hold."""
    count, latest = tx.execute(select(func.count(), func.max(decisions.c.decided_at)).where(which)).one()
    if latest is not None and latest.tzinfo is None:  # SQLite gives naive times back; stored in UTC
        latest = latest.replace(tzinfo=UTC)
    return Held(int(count), latest + timedelta(days=hold_days) if latest is not None else None)


def _log(
    tx: Connection, kind: str, subject: str | None, requested_by: str, summary: dict[str, object]
) -> None:
    tx.execute(
        insert(privacy_log).values(
            kind=kind, subject=subject, requested_by=requested_by, done_at=now(),
            summary=_jsonable(summary),
        )
    )  # fmt: skip


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value.isoformat() if isinstance(value, datetime) else value
