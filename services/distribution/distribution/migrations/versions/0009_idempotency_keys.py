"""Idempotency-Keys of the POSTs that create something, with the answers kept for replays
(shared.idempotency).

Revision ID: 0009
Revises: 0008 (the consumer failures, merged first)
"""

from alembic import op

from shared import idempotency

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    idempotency.create_table(op)


def downgrade() -> None:
    idempotency.drop_table(op)
