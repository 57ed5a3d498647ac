"""Memberships copied from identity carry the person's access_version, and the copy knows up to
which version it is complete (shared.memberships: a change of rights counts at once).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from shared import memberships

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    memberships.add_access_versions(op)


def downgrade() -> None:
    memberships.drop_access_versions(op)
