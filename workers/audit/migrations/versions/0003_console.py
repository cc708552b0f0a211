"""The console: the review queue read through indexes, people's decisions, users, human actions.

Decisions gain the review queue's columns (the template as a column, who decided and their note
for a manual decision, which decision superseded each, its review state) and the indexes the
queue's pages read, newest first with keyset pagination; a decision's discrepancy kinds get a
table of their own for the discrepancy filter. Existing rows are filled from what they hold.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
QUEUED = "review IS NOT NULL"
MANUAL = "kind = 'manual'"


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        for name, kind in (("template_id", sa.String(256)), ("decided_by", sa.String(256)), ("note", sa.Text),
                           ("superseded_by", sa.String(64)), ("review", sa.String(16))):  # fmt: skip
            batch.add_column(sa.Column(name, kind))
    op.create_index("ix_decisions_supersedes", "decisions", ["supersedes"])
    op.create_index("ix_decisions_review", "decisions", ["review", "decided_at", "decision_id"])
    op.create_index(
        "ix_decisions_review_outcome", "decisions", ["review", "outcome", "decided_at", "decision_id"]
    )
    op.create_index(
        "ix_decisions_review_template", "decisions", ["review", "template_id", "decided_at", "decision_id"]
    )
    op.create_index(
        "ix_decisions_queued", "decisions", ["decided_at", "decision_id"],
        postgresql_where=sa.text(QUEUED), sqlite_where=sa.text(QUEUED),
    )  # fmt: skip
    op.create_index(
        "uq_decisions_manual_supersedes", "decisions", ["supersedes"], unique=True,
        postgresql_where=sa.text(MANUAL), sqlite_where=sa.text(MANUAL),
    )  # fmt: skip
    issues = op.create_table(
        "decision_issues",
        sa.Column("decision_id", sa.String(64), primary_key=True),
        sa.Column("issue", sa.String(64), primary_key=True),
        sa.Column("decided_at", TZ, nullable=False),
    )
    op.create_index("ix_decision_issues_issue", "decision_issues", ["issue", "decided_at", "decision_id"])
    op.create_table(
        "console_users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "console_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(256)),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_console_actions_target", "console_actions", ["target"])
    op.create_index("ix_console_actions_at", "console_actions", ["at"])
    _fill(issues)


def _fill(issues: sa.Table) -> None:
    """The new columns of the decisions already recorded, from what they hold."""
    rows = sa.table(
        "decisions", sa.column("decision_id", sa.String), sa.column("supersedes", sa.String),
        sa.column("document", sa.JSON), sa.column("template_id", sa.String), sa.column("kind", sa.String),
        sa.column("outcome", sa.String), sa.column("needs_review", sa.Boolean),
        sa.column("superseded_by", sa.String), sa.column("review", sa.String),
        sa.column("decided_at", TZ),
    )  # fmt: skip
    later = rows.alias("later")
    op.execute(sa.update(rows).values(template_id=rows.c.document["template_id"].as_string()))
    newer = later.c.supersedes == rows.c.decision_id
    superseder = sa.select(later.c.decision_id).where(newer).limit(1).scalar_subquery()
    op.execute(sa.update(rows).values(superseded_by=superseder))
    needs_person = rows.c.needs_review.is_(True) | rows.c.outcome.in_(("attention", "rejected"))
    op.execute(
        sa.update(rows)
        .where((rows.c.kind == "outcome") & rows.c.superseded_by.is_(None) & needs_person)
        .values(review="open")
    )
    # Read in slices, written as they come: a large trail is never held in memory at once.
    connection = op.get_bind()
    found = connection.execute(
        sa.select(rows.c.decision_id, rows.c.document, rows.c.decided_at).execution_options(yield_per=1000)
    )
    for part in found.partitions():
        batch = [
            {"decision_id": decision_id, "issue": kind, "decided_at": decided_at}
            for decision_id, document, decided_at in part
            for kind in sorted(
                {d["issue"] for d in (document or {}).get("discrepancies", []) if d.get("issue")}
            )
        ]
        if batch:
            op.bulk_insert(issues, batch)


def downgrade() -> None:
    for table in ("console_actions", "console_users", "decision_issues"):
        op.drop_table(table)
    indexes = ("uq_decisions_manual_supersedes", "ix_decisions_queued", "ix_decisions_review_template",
               "ix_decisions_review_outcome", "ix_decisions_review", "ix_decisions_supersedes")  # fmt: skip
    for index in indexes:
        op.drop_index(index, table_name="decisions")
    with op.batch_alter_table("decisions") as batch:
        for name in ("review", "superseded_by", "note", "decided_by", "template_id"):
            batch.drop_column(name)
