"""Customer profiles, users, and the outbox/inbox tables.

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
        "customer_profiles",
        sa.Column("customer_number", sa.String(20), primary_key=True),
        sa.Column("company_id", sa.String(8), nullable=False, index=True),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("billing_address", sa.JSON()),
        sa.Column("delivery_address", sa.JSON()),
        sa.Column("delivery_method", sa.String(10), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200)),
        sa.Column("staff", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("customer_profiles")
    messaging.drop_tables(op)
