"""The audit trail's tables, the engine that reaches them, and Alembic's configuration: SQLite by
default (a file, nothing to set up), PostgreSQL by URL in production (CUBEHOOK_DATABASE_URL). The
schema is the Alembic migrations' (workers/migrations); these tables mirror them for queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(256), nullable=False, index=True),
    Column("event_type", String(256), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(256), nullable=False),
    Column("session_id", String(256), index=True),
    Column("disposition", String(16), nullable=False),  # accepted | duplicate | ignored
    Column("event_time", String(64)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
snapshots = Table(
    "snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(256), nullable=False, index=True),
    Column("client_id", String(256), index=True),  # the session's clientId: erasure finds rows by it
    Column("fingerprint", String(64), nullable=False),
    Column("trigger", String(256), nullable=False),
    Column("session", JSON, nullable=False),
    Column("checks", JSON, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)
decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("session_id", String(256), nullable=False, index=True),
    Column("client_id", String(256), index=True),
    Column("kind", String(16), nullable=False),
    Column("outcome", String(16)),
    Column("needs_review", Boolean, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("supersedes", String(64)),
    Column("trigger", String(256), nullable=False),
    Column("document", JSON, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)
action_ledger = Table(
    "action_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(64), nullable=False, index=True),
    Column("session_id", String(256), nullable=False, index=True),
    Column("action", String(128), nullable=False),
    Column("state", String(16), nullable=False),  # pending | sending | sent | failed | dead
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("decision_id", "action", name="uq_action_ledger_decision_action"),
)
action_attempts = Table(
    "action_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(64), nullable=False, index=True),
    Column("session_id", String(256), nullable=False, index=True),
    Column("action", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
)

# What retention and erasure removed or redacted, when, at whose request: counts, never the data.
privacy_log = Table(
    "privacy_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # purge | erase
    Column("subject", String(64)),  # erase: SHA-256 of the client id (hex); purge: none
    Column("requested_by", String(256), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=False),
    Column("summary", JSON, nullable=False),
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to try an action once more: its attempt number."""

    decision_id: str
    action: str
    attempt: int


def alembic_config() -> Config:

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        # Several worker processes share the file: WAL lets readers and one writer coexist, and a
        # writer waits for the lock instead of failing at once.
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: object) -> None:  # noqa: ANN401 - DB-API has no types
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    return engine
