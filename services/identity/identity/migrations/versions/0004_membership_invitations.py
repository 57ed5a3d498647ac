"""A membership is "invited" until the person accepts (an existing account too), with an id of
its own for the profile's list, the name the administrator typed and until when the invitation
works. Memberships of accounts that have not accepted their invitation yet become invited (their
id stays the one administrators have seen); every other one stays active.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The tables as this revision knows them (the models may move on).
users = sa.table("users", sa.column("id", sa.String), sa.column("name", sa.String), sa.column("status", sa.String))
tokens = sa.table(
    "tokens",
    sa.column("user_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)
memberships = sa.table(
    "memberships",
    sa.column("user_id", sa.String),
    sa.column("status", sa.String),
    sa.column("invitation_id", sa.String),
    sa.column("invited_name", sa.String),
    sa.column("invited_until", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("memberships") as table:
        table.add_column(sa.Column("status", sa.String(10), nullable=False, server_default="active"))
        table.add_column(sa.Column("invitation_id", sa.String(36)))
        table.add_column(sa.Column("invited_name", sa.String(200)))
        table.add_column(sa.Column("invited_until", sa.DateTime(timezone=True)))
        table.create_unique_constraint("uq_memberships_invitation_id", ["customer_number", "invitation_id"])
    op.execute(
        sa.update(memberships)
        .where(memberships.c.user_id.in_(sa.select(users.c.id).where(users.c.status == "invited")))
        .values(
            status="invited",
            invitation_id=memberships.c.user_id,
            invited_name=sa.select(users.c.name).where(users.c.id == memberships.c.user_id).scalar_subquery(),
            invited_until=sa.select(sa.func.max(tokens.c.expires_at))
            .where(tokens.c.user_id == memberships.c.user_id, tokens.c.kind == "invitation")
            .scalar_subquery(),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("memberships") as table:
        table.drop_constraint("uq_memberships_invitation_id", type_="unique")
        table.drop_column("invited_until")
        table.drop_column("invited_name")
        table.drop_column("invitation_id")
        table.drop_column("status")
