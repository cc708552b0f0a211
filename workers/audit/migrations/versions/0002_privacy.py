"""Personal data: snapshots and decisions findable by client (erasure), and the privacy log.

The new client_id columns are filled from what the rows already hold: a snapshot's session JSON
(``clientId``), a decision's document (``client_id``).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, column in (("snapshots", "session"), ("decisions", "document")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("client_id", sa.String(256)))
            batch.create_index(f"ix_{table}_client_id", ["client_id"])
        # JSON paths through SQLAlchemy's JSON type: json_extract on SQLite, ->> on PostgreSQL.
        rows = sa.table(table, sa.column(column, sa.JSON), sa.column("client_id", sa.String))
        key = "clientId" if table == "snapshots" else "client_id"
        op.execute(sa.update(rows).values(client_id=rows.c[column][key].as_string()))
    op.create_table(
        "privacy_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("privacy_log")
    for table in ("decisions", "snapshots"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_client_id")
            batch.drop_column("client_id")
