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
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)

metadata = MetaData()
QUEUED = text("review IS NOT NULL")  # in the review queue, open or reviewed
MANUAL = text("kind = 'manual'")  # a person's decision

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
    # The review queue (migration 0003): filters and states as columns, so that its pages are read
    # through indexes. ``review``: open (an automatic decision that needs a person: needs_review,
    # attention or rejected, not superseded), reviewed (superseded by a person's decision), or
    # none. ``decided_by`` and ``note``: a person's decision (kind manual); the note stays here.
    Column("template_id", String(256)),
    Column("decided_by", String(256)),
    Column("note", Text),
    Column("superseded_by", String(64)),
    Column("review", String(16)),
    Index("ix_decisions_supersedes", "supersedes"),
    Index("ix_decisions_decided_at", "decided_at"),  # the ledger's reconciliation (workers.ledger)
    Index("ix_decisions_review", "review", "decided_at", "decision_id"),
    Index("ix_decisions_review_outcome", "review", "outcome", "decided_at", "decision_id"),
    Index("ix_decisions_review_template", "review", "template_id", "decided_at", "decision_id"),
    # "all" (open and reviewed), newest first.
    Index("ix_decisions_queued", "decided_at", "decision_id", postgresql_where=QUEUED, sqlite_where=QUEUED),
    # One person's decision per decision: of two reviewers at once, the second is refused.
    Index(
        "uq_decisions_manual_supersedes",
        "supersedes",
        unique=True,
        postgresql_where=MANUAL,
        sqlite_where=MANUAL,
    ),
)
# The review queue's discrepancy filter: a decision's discrepancy kinds, one row each.
decision_issues = Table(
    "decision_issues",
    metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("issue", String(64), primary_key=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Index("ix_decision_issues_issue", "issue", "decided_at", "decision_id"),
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
    Index("ix_action_ledger_state", "state", "updated_at"),  # the reconciliation: what is not sent
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

# Facts about the deployment that must outlive Redis: the epoch of the Redis data set the trail
# was last written beside (workers.epoch), so that a Redis that comes back empty is noticed.
markers = Table(
    "markers",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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

# The console's users (cubehook_console.users): a name, a role, an argon2 hash (none: single
# sign-on only); and every human action taken there: who, what, when, from where.
console_users = Table(
    "console_users",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),  # viewer | reviewer | operator
    Column("password_hash", String(256)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
console_actions = Table(
    "console_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_name", String(128), nullable=False),
    Column("action", String(32), nullable=False),  # login, decide, replay_dead_letter, ...
    Column("target", String(256)),  # a session id, a job id, a webhook id
    Column("address", String(64), nullable=False),  # where from: the client's address
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_console_actions_target", "target"),
    Index("ix_console_actions_at", "at"),
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
    # hide_parameters: a failed statement's error (and so a log line) never carries its values,
    # which can be a customer's data or a note a reviewer typed.
    # A database that does not answer fails a connection in seconds, not at the kernel's pace:
    # a worker must notice an outage (and put its jobs back) while ComplyCube's events keep coming.
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)
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
