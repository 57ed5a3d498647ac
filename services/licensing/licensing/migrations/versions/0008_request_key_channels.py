"""A partner's idempotency keys per channel: `idempotent_requests` gets `channel` ('rest': the
REST API's Idempotency-Key, 'amqp': a broker message's message_id) in its primary key, so
`Idempotency-Key: amqp:X` no longer meets message X. Rows stored as `amqp:<message_id>` (the
partner inbox's prefix until now) move to channel 'amqp' without the prefix; all others are
'rest'. The primary key is widened before the prefix goes, so a REST key X and a message X
of one partner become two rows.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLE = "idempotent_requests"
PRIMARY_KEY = "idempotent_requests_pkey"  # PostgreSQL's name for the table's unnamed key
PREFIX = "amqp:"


def _table(with_channel: bool) -> sa.Table:
    """The table as it is to be (SQLite copies it into this shape: its key cannot be altered)."""
    channel = [sa.Column("channel", sa.String(10), primary_key=True)] if with_channel else []
    return sa.Table(
        TABLE,
        sa.MetaData(),
        sa.Column("partner_id", sa.String(36), primary_key=True),
        *channel,
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def _primary_key(with_channel: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(TABLE, recreate="always", copy_from=_table(with_channel)):
            pass
        return
    op.drop_constraint(PRIMARY_KEY, TABLE, type_="primary")
    op.create_primary_key(PRIMARY_KEY, TABLE, [column.name for column in _table(with_channel).primary_key])


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("channel", sa.String(10)))
    op.execute(
        sa.text(f"UPDATE {TABLE} SET channel = CASE WHEN key LIKE :prefix THEN 'amqp' ELSE 'rest' END").bindparams(
            prefix=PREFIX + "%"
        )
    )
    _primary_key(with_channel=True)
    op.execute(
        sa.text(f"UPDATE {TABLE} SET key = substr(key, :start) WHERE channel = 'amqp' AND key LIKE :prefix").bindparams(
            start=len(PREFIX) + 1, prefix=PREFIX + "%"
        )
    )


def downgrade() -> None:
    # One key space again: where a REST key and a message id of one partner spell the same
    # after the prefix, the message's row stays (the partner inbox's answer to a redelivery).
    op.execute(
        sa.text(
            f"DELETE FROM {TABLE} WHERE channel = 'rest' AND EXISTS (SELECT 1 FROM {TABLE} AS message "
            f"WHERE message.partner_id = {TABLE}.partner_id AND message.channel = 'amqp' "
            f"AND :prefix || message.key = {TABLE}.key)"
        ).bindparams(prefix=PREFIX)
    )
    op.execute(sa.text(f"UPDATE {TABLE} SET key = :prefix || key WHERE channel = 'amqp'").bindparams(prefix=PREFIX))
    _primary_key(with_channel=False)
    if op.get_bind().dialect.name != "sqlite":  # SQLite's copy left it out
        op.drop_column(TABLE, "channel")
