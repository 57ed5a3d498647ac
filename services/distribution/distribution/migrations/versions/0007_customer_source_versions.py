"""The replica of licensing's customers keeps the customer's `version` (`source_version`):
a change is applied only if its version is higher (shared.ordering), not because its clock
says later. Rows already there start at 0, below any versioned event, so the next one wins.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as table:
        table.add_column(sa.Column("source_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("customers") as table:
        table.drop_column("source_version")
