"""Customers keep their billing address: a DVD goes there while no delivery address is set.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as table:
        table.add_column(sa.Column("billing_address", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("customers") as table:
        table.drop_column("billing_address")
