"""The audit trail and the action ledger, through SQLAlchemy: a SQLite file by default (nothing to
set up), PostgreSQL by URL in production (``CUBEHOOK_DATABASE_URL``). The schema is managed by the
Alembic migrations in ``workers/audit/migrations``; ``AuditStore.migrate()`` brings a database up to date.

What a compliance officer can show a regulator: every event received and what became of it, every
session snapshot fetched (ComplyCube's JSON: whole, or only what decisions use with
CUBEHOOK_SNAPSHOT_MODE=minimal), every decision with its reasons, and every action attempt with
its result. Rows are only added, except the ledger's state, and what workers.audit.retention removes
or erases (retention, erasure requests), which it records in ``privacy_log``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from redis import Redis
from sqlalchemy import Connection, Engine, insert, make_url, select, update
from sqlalchemy.exc import IntegrityError

from service import keys
from service.errors import NoAuditTrail
from service.events import parse_time
from service.log import scrub_text
from service.settings import Settings, SnapshotMode
from workers.audit import privacy
from workers.audit.ledger import LedgerRecords
from workers.audit.schema import (
    action_attempts,
    alembic_config,
    decision_issues,
    decisions,
    events,
    make_engine,
    now,
    snapshots,
)
from workers.judging.judge import Decision, Kind

T = TypeVar("T")
NEEDS_A_PERSON = ("attention", "rejected")  # with needs_review: what the console's review queue lists


class AuditStore(LedgerRecords):
    """The audit trail and the action ledger of one database: what was received, fetched,
    decided and sent, each written once; and the ledger's claim on each action's next attempt."""

    def __init__(self, engine: Engine, snapshot_mode: SnapshotMode = SnapshotMode.FULL) -> None:
        self.engine = engine
        self.snapshot_mode = snapshot_mode

    @classmethod
    def from_url(cls, url: str, snapshot_mode: SnapshotMode = SnapshotMode.FULL) -> AuditStore:
        return cls(make_engine(url), snapshot_mode)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditStore:
        return cls.from_url(settings.database_url, settings.snapshot_mode)

    @classmethod
    def existing(cls, url: str, snapshot_mode: SnapshotMode = SnapshotMode.FULL) -> AuditStore:
        """The audit trail at ``url``, to read: never created (a SQLite file that is not there
        stays so). Raises NoAuditTrail when there is none, or its schema is behind."""
        missing = NoAuditTrail(
            f"no audit trail at {scrub_text(url)}; run `cubehook db upgrade` or set CUBEHOOK_DATABASE_URL"
        )
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not _sqlite_file(parsed.database):
            raise missing
        store = cls.from_url(url, snapshot_mode)
        if store.needs_migration():
            store.engine.dispose()
            raise missing
        return store

    def migrate(self, revision: str = "head", lock: Redis | None = None) -> None:
        """Bring the schema up to the newest migration (Alembic), or to ``revision``. With ``lock``
        (processes starting together, workers and the console, would race to create it), one
        migrates at a time under a lock in that Redis, whose short lease frees it soon if its holder
        dies; an up-to-date schema needs no lock."""
        if lock is not None:
            if self.needs_migration():
                with lock.lock(keys.MIGRATE_LOCK, timeout=20, blocking_timeout=60):
                    self.migrate(revision)
            return
        from alembic import command

        config = alembic_config()
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def needs_migration(self) -> bool:
        """Whether the schema is behind the newest migration (read-only, no lock needed)."""
        current, head = self.revisions()
        return current != head

    def revisions(self) -> tuple[str | None, str | None]:
        """The schema's migration (None: no audit trail yet), and the newest one (read-only)."""
        from alembic.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision(), head

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # --- the trail -----------------------------------------------------------------------------

    def record_event(
        self,
        *,
        event_id: str,
        event_type: str,
        resource_type: str,
        resource_id: str,
        disposition: str,
        event_time: str | None,
        session_id: str | None = None,
        once: bool = False,
    ) -> None:
        """``once``: skip when this event is already on record with this disposition (a re-run)."""
        with self._tx() as tx:
            if once:
                seen = (events.c.event_id == event_id) & (events.c.disposition == disposition)
                if tx.execute(select(events.c.id).where(seen).limit(1)).first() is not None:
                    return
            tx.execute(
                insert(events).values(
                    event_id=event_id, event_type=event_type, resource_type=resource_type,
                    resource_id=resource_id, session_id=session_id, disposition=disposition,
                    event_time=event_time, recorded_at=now(),
                )
            )  # fmt: skip

    def record_snapshot(
        self, session_id: str, fingerprint: str, trigger: str, session: dict[str, Any], checks: dict[str, Any]
    ) -> None:
        client_id = session.get("clientId") if isinstance(session.get("clientId"), str) else None
        if self.snapshot_mode is SnapshotMode.MINIMAL:
            session, checks = privacy.minimal(session, checks)
        with self._tx() as tx:
            tx.execute(
                insert(snapshots).values(
                    session_id=session_id, client_id=client_id, fingerprint=fingerprint, trigger=trigger,
                    session=session, checks=checks, fetched_at=now(),
                )
            )  # fmt: skip

    def record_decision(self, decision: Decision) -> None:
        """Idempotent: a decision is recorded once, however often this is called for it."""
        try:
            with self._tx() as tx:
                self._insert_decision(tx, decision, note=None)
        except IntegrityError:
            pass  # recorded before

    def record_manual(self, decision: Decision, note: str, then: Callable[[], T]) -> T:
        """Record a person's decision with their note, and run ``then`` (its commit in Redis) inside
        the same transaction: an exception from ``then`` leaves nothing recorded. IntegrityError
        when this decision is recorded already (a double submit), or when another person's
        decision superseded the same one first."""
        with self._tx() as tx:
            self._insert_decision(tx, decision, note=note)
            return then()

    def _insert_decision(self, tx: Connection, decision: Decision, note: str | None) -> None:
        """The decision's row, its discrepancy kinds, and the review queue's states: the one it
        supersedes leaves the queue (reviewed, when a person decided), and it enters it when it is
        an automatic decision that needs a person, unless a decision recorded before it (out of
        order) supersedes it already."""
        newer = decisions.c.supersedes == decision.decision_id
        later = tx.execute(select(decisions.c.decision_id, decisions.c.kind).where(newer)).first()
        needs_person = decision.needs_review or decision.outcome in NEEDS_A_PERSON
        review = "open" if decision.kind is Kind.OUTCOME and needs_person else None
        if later is not None:
            review = "reviewed" if review and later.kind == Kind.MANUAL else None
        decided_at = datetime.fromisoformat(decision.decided_at)
        tx.execute(
            insert(decisions).values(
                decision_id=decision.decision_id, session_id=decision.session_id,
                client_id=decision.client_id, kind=decision.kind.value, outcome=decision.outcome,
                needs_review=decision.needs_review, fingerprint=decision.fingerprint,
                supersedes=decision.supersedes, trigger=decision.trigger,
                document=decision.to_dict(), decided_at=decided_at, template_id=decision.template_id,
                decided_by=decision.decided_by, note=note, review=review,
                superseded_by=later.decision_id if later is not None else None,
            )
        )  # fmt: skip
        kinds = sorted({str(d["issue"]) for d in decision.discrepancies if d.get("issue")})
        if kinds:
            decision_id = decision.decision_id
            rows = [{"decision_id": decision_id, "issue": k, "decided_at": decided_at} for k in kinds]
            tx.execute(insert(decision_issues), rows)
        if decision.supersedes is None:
            return
        older = (decisions.c.decision_id == decision.supersedes) & decisions.c.superseded_by.is_(None)
        tx.execute(update(decisions).where(older).values(superseded_by=decision.decision_id))
        left = "reviewed" if decision.kind is Kind.MANUAL else None
        opened = (decisions.c.decision_id == decision.supersedes) & (decisions.c.review == "open")
        tx.execute(update(decisions).where(opened).values(review=left))

    def latest_decision(self, session_id: str) -> Decision | None:
        """The session's current decision: the latest made (None when it has none)."""
        query = (
            select(decisions.c.document)
            .where(decisions.c.session_id == session_id)
            .order_by(decisions.c.decided_at.desc())
            .limit(1)
        )
        with self._tx() as tx:
            document = tx.execute(query).scalar()
        return Decision.from_dict(document) if document else None

    def superseder(self, decision_id: str) -> Decision | None:
        """The decision that superseded this one, if any (the first recorded)."""
        query = (
            select(decisions.c.document)
            .where(decisions.c.supersedes == decision_id)
            .order_by(decisions.c.decided_at)
            .limit(1)
        )
        with self._tx() as tx:
            document = tx.execute(query).scalar()
        return Decision.from_dict(document) if document else None

    def decision(self, decision_id: str) -> Decision | None:
        with self._tx() as tx:
            document = tx.execute(
                select(decisions.c.document).where(decisions.c.decision_id == decision_id)
            ).scalar()
        return Decision.from_dict(document) if document else None

    # --- reading it back -----------------------------------------------------------------------

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """Everything recorded about a session, oldest first, each with an ``entry`` (event, snapshot,
        decision, attempt) and a ``time``."""
        parts: list[dict[str, Any]] = []
        with self._tx() as tx:
            for row in tx.execute(select(events).where(events.c.session_id == session_id)):
                # In the story at the time ComplyCube gave it: a worker may look at it well after
                # (a deferred look, a retry), and the line then says when it was recorded.
                sent = parse_time(row.event_time) if row.event_time else None
                parts.append({"entry": "event", "time": sent or row.recorded_at, **dict(row._mapping)})
            for row in tx.execute(select(snapshots).where(snapshots.c.session_id == session_id)):
                parts.append({"entry": "snapshot", "time": row.fetched_at, **dict(row._mapping)})
            for row in tx.execute(select(decisions).where(decisions.c.session_id == session_id)):
                parts.append({"entry": "decision", "time": row.decided_at, **dict(row._mapping)})
            for row in tx.execute(select(action_attempts).where(action_attempts.c.session_id == session_id)):
                parts.append({"entry": "attempt", "time": row.finished_at, **dict(row._mapping)})
        for part in parts:
            for field in ("time", "recorded_at"):  # SQLite gives naive times back, stored in UTC
                if isinstance(part.get(field), datetime) and part[field].tzinfo is None:
                    part[field] = part[field].replace(tzinfo=UTC)
        return sorted(parts, key=lambda p: (p["time"], p["entry"]))


def _sqlite_file(database: str | None) -> bool:
    """Whether a SQLite database names a file with something in it (an empty one was made by a
    connection that found nothing: opening it would only write SQLite's header into it)."""
    if not database or database == ":memory:":
        return False
    path = Path(database).expanduser()
    return path.is_file() and path.stat().st_size > 0
