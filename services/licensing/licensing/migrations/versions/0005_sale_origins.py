"""Who made each customer (staff, which partner, the importer), and partners' sales that
landed on a customer the partner had not sold to before.

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
    # Customers made before this stay NULL: nobody recorded who made them.
    with op.batch_alter_table("customers") as table:
        table.add_column(sa.Column("created_by", sa.String(10), nullable=True))
        table.add_column(sa.Column("created_by_partner_id", sa.String(36), nullable=True))
        table.create_foreign_key("fk_customers_created_by_partner", "partners", ["created_by_partner_id"], ["id"])
    with op.batch_alter_table("licenses") as table:
        table.add_column(
            sa.Column("matched_existing_customer", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_licenses_partner_customer", "licenses", ["partner_id", "customer_id"])


def downgrade() -> None:
    op.drop_index("ix_licenses_partner_customer", table_name="licenses")
    with op.batch_alter_table("licenses") as table:
        table.drop_column("matched_existing_customer")
    with op.batch_alter_table("customers") as table:
        table.drop_constraint("fk_customers_created_by_partner", type_="foreignkey")
        table.drop_column("created_by_partner_id")
        table.drop_column("created_by")
