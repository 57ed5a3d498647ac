"""Indexes for a customer's license list, one per order (by product, by support).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_licenses_list_by_product",
        "licenses",
        ["customer_id", "status", "product_code", "edition", "installation_number"],
    )
    op.create_index(
        "ix_licenses_list_by_support", "licenses", ["customer_id", "status", "support_until", "installation_number"]
    )


def downgrade() -> None:
    op.drop_index("ix_licenses_list_by_support", table_name="licenses")
    op.drop_index("ix_licenses_list_by_product", table_name="licenses")
