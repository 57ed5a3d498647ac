"""Delivery address and method in the customer replica (from identity).

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
    with op.batch_alter_table("customers") as table:
        table.add_column(sa.Column("delivery_address", sa.JSON()))
        table.add_column(sa.Column("delivery_method", sa.String(10), nullable=False, server_default="download"))
        table.add_column(sa.Column("contacts_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("customers") as table:
        table.drop_column("contacts_version")
        table.drop_column("delivery_method")
        table.drop_column("delivery_address")
