"""Customers, and the outbox/inbox tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared import messaging

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    messaging.create_tables(op)
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("customer_number", sa.String(20), unique=True),
        sa.Column("company_id", sa.String(8), nullable=False, unique=True),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("billing_address", sa.JSON()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("customers")
    messaging.drop_tables(op)
