"""The consumer's own count of handler failures per message (`consumer_failures`): only these
make a message poison, not the broker's count of deliveries (crashes and outages add to it).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from shared import messaging

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    messaging.create_consumer_failures(op)


def downgrade() -> None:
    messaging.drop_consumer_failures(op)
