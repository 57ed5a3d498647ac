"""Customer replica, news, and the outbox/inbox tables.

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
        sa.Column("customer_number", sa.String(20), primary_key=True),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "news",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("starts_at", sa.DateTime(timezone=True)),
        sa.Column("city", sa.String(100)),
        sa.Column("capacity", sa.Integer()),
    )


def downgrade() -> None:
    op.drop_table("news")
    op.drop_table("customers")
    messaging.drop_tables(op)
