"""Memberships, profile claims, tokens, outgoing mail, throttles; versions for contacts.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from shared import throttle

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    throttle.create_table(op)
    with op.batch_alter_table("customer_profiles") as table:
        table.add_column(sa.Column("contacts_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "customer_number",
            sa.String(20),
            sa.ForeignKey("customer_profiles.customer_number"),
            primary_key=True,
            index=True,
        ),
        sa.Column("administrator", sa.Boolean(), nullable=False),
        sa.Column("rights", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "profile_claims",
        sa.Column(
            "customer_number", sa.String(20), sa.ForeignKey("customer_profiles.customer_number"), primary_key=True
        ),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("customer_number", sa.String(20)),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outgoing_mail",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("outgoing_mail")
    op.drop_table("tokens")
    op.drop_table("profile_claims")
    op.drop_table("memberships")
    with op.batch_alter_table("customer_profiles") as table:
        table.drop_column("contacts_version")
    op.drop_table("throttles")
