"""Customers count their changes (`version`), carried by the customer events so that
identity's and distribution's replicas order them by it instead of by the clock. A customer
already there has been announced once at least: it starts at 1.

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
        table.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("customers") as table:
        table.drop_column("version")
