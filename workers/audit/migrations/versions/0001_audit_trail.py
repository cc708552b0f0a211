"""The audit trail and the action ledger.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(256), nullable=False),
        sa.Column("session_id", sa.String(256)),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("event_time", sa.String(64)),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_index("ix_events_event_id", "events", ["event_id"])
    op.create_index("ix_events_session_id", "events", ["session_id"])
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(256), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(256), nullable=False),
        sa.Column("session", sa.JSON, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
    )
    op.create_index("ix_snapshots_session_id", "snapshots", ["session_id"])
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("needs_review", sa.Boolean, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("supersedes", sa.String(64)),
        sa.Column("trigger", sa.String(256), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("decided_at", TZ, nullable=False),
    )
    op.create_index("ix_decisions_session_id", "decisions", ["session_id"])
    op.create_table(
        "action_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(256), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("sent_at", TZ),
        sa.UniqueConstraint("decision_id", "action", name="uq_action_ledger_decision_action"),
    )
    op.create_index("ix_action_ledger_decision_id", "action_ledger", ["decision_id"])
    op.create_index("ix_action_ledger_session_id", "action_ledger", ["session_id"])
    op.create_table(
        "action_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(256), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=False),
    )
    op.create_index("ix_action_attempts_decision_id", "action_attempts", ["decision_id"])
    op.create_index("ix_action_attempts_session_id", "action_attempts", ["session_id"])


def downgrade() -> None:
    for table in ("action_attempts", "action_ledger", "decisions", "snapshots", "events"):
        op.drop_table(table)
