"""Infrastructure: the markers table (Redis's epoch, workers.epoch), and the indexes the ledger's
reconciliation reads (workers.ledger): actions not sent, by state; decisions by time.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "markers",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_action_ledger_state", "action_ledger", ["state", "updated_at"])
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])


def downgrade() -> None:
    op.drop_index("ix_decisions_decided_at", "decisions")
    op.drop_index("ix_action_ledger_state", "action_ledger")
    op.drop_table("markers")
