"""People are announced to other services (`identity.user.changed`): what was last announced
and its version on each user; every person already active is announced once, so a new
consumer (the forum) learns the people who exist.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

from shared.outbox import add_event

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The tables as this revision knows them (the models may move on).
users = sa.table(
    "users",
    sa.column("id", sa.String),
    sa.column("email", sa.String),
    sa.column("name", sa.String),
    sa.column("staff", sa.Boolean),
    sa.column("status", sa.String),
    sa.column("announced", sa.JSON),
    sa.column("version", sa.Integer),
)
memberships = sa.table(
    "memberships",
    sa.column("user_id", sa.String),
    sa.column("customer_number", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
profiles = sa.table("customer_profiles", sa.column("customer_number", sa.String), sa.column("company_name", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("announced", sa.JSON()))
        table.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
    # The same state identity.people.state computes, as of this revision.
    session = Session(bind=op.get_bind())
    for user in session.execute(sa.select(users).where(users.c.status == "active").order_by(users.c.id)).all():
        company_name = session.scalar(
            sa.select(profiles.c.company_name)
            .join(memberships, memberships.c.customer_number == profiles.c.customer_number)
            .where(memberships.c.user_id == user.id)
            .order_by(memberships.c.created_at, memberships.c.customer_number)
            .limit(1)
        )
        if not user.staff and company_name is None:
            continue  # not active as others see it: never announced
        data = {
            "user_id": user.id,
            "name": user.name,
            "email": user.email,
            "company_name": company_name,
            "staff": bool(user.staff),
            "active": True,
        }
        session.execute(sa.update(users).where(users.c.id == user.id).values(announced=data, version=1))
        add_event(session, "identity.user.changed", {**data, "version": 1}, producer="identity")
    session.close()


def downgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.drop_column("version")
        table.drop_column("announced")
