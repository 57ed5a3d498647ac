"""Catalogue, partners and keys, licenses, idempotent requests, memberships, throttles.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from shared import memberships, throttle

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    throttle.create_table(op)
    op.create_table(
        "products",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("editions", sa.JSON(), nullable=False),
        sa.Column("add_ons", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "partners",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("broker_user", sa.String(100), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "partner_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("partner_id", sa.String(36), sa.ForeignKey("partners.id"), nullable=False, index=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "licenses",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("installation_number", sa.String(20), nullable=False, unique=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False, index=True),
        sa.Column("product_code", sa.String(40), sa.ForeignKey("products.code"), nullable=False),
        sa.Column("edition", sa.String(60), nullable=False),
        sa.Column("add_ons", sa.JSON(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("partner_id", sa.String(36), sa.ForeignKey("partners.id")),
        sa.Column("partner_sale_id", sa.String(100)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("sold_on", sa.Date(), nullable=False),
        sa.Column("support_until", sa.Date(), index=True),
        sa.Column("registered_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("partner_id", "partner_sale_id", name="uq_licenses_partner_sale"),
    )
    op.create_table(
        "idempotent_requests",
        sa.Column("partner_id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    memberships.create_table(op)


def downgrade() -> None:
    op.drop_table("memberships")
    for table in ("idempotent_requests", "licenses", "partner_keys", "partners", "products"):
        op.drop_table(table)
    op.drop_table("throttles")
