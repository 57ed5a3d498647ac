"""The consumer's own count of handler failures per message (`consumer_failures`): only these
make a message poison, not the broker's count of deliveries (crashes and outages add to it).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from shared import messaging

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    messaging.create_consumer_failures(op)


def downgrade() -> None:
    messaging.drop_consumer_failures(op)
