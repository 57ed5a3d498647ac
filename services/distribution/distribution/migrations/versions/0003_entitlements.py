"""Entitlements: licenses as distribution needs them (from licensing's events).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entitlements",
        sa.Column("installation_number", sa.String(20), primary_key=True),
        sa.Column("customer_number", sa.String(20), nullable=False, index=True),
        sa.Column("product", sa.String(40), nullable=False),
        sa.Column("edition", sa.String(60), nullable=False),
        sa.Column("add_ons", sa.JSON(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("support_until", sa.Date()),
        sa.Column("version", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("entitlements")
