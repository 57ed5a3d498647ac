"""Licensing migration 0008: a partner's idempotency keys get a channel in their primary key;
the partner inbox's `amqp:<message_id>` rows move to channel 'amqp' without the prefix, even
where the partner used the same spelling as a REST key; and back."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text

from shared.db import make_engine
from shared.migrations import alembic_config, upgrade

ROWS = [("p1", "amqp:m-1"), ("p1", "m-1"), ("p1", "k-2"), ("p2", "amqp:k-2")]


def rows(engine) -> set[tuple]:
    with engine.connect() as connection:
        return set(connection.execute(text("SELECT partner_id, channel, key, response FROM idempotent_requests")))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_amqp_keys_move_to_their_own_channel_and_back(backend, new_database, tmp_path):
    url = new_database("licensing") if backend == "postgresql" else f"sqlite:///{tmp_path / 'licensing'}.db"
    upgrade("licensing", url, "0007")
    engine = make_engine(url)
    with engine.begin() as connection:
        for partner, key in ROWS:
            connection.execute(
                text(
                    "INSERT INTO idempotent_requests (partner_id, key, request_hash, status, response, created_at) "
                    "VALUES (:p, :k, 'h', 201, :r, CURRENT_TIMESTAMP)"
                ),
                {"p": partner, "k": key, "r": key},
            )
    upgrade("licensing", url, "0008")
    assert rows(engine) == {
        ("p1", "amqp", "m-1", "amqp:m-1"),
        ("p1", "rest", "m-1", "m-1"),
        ("p1", "rest", "k-2", "k-2"),
        ("p2", "amqp", "k-2", "amqp:k-2"),
    }
    assert inspect(engine).get_pk_constraint("idempotent_requests")["constrained_columns"] == [
        "partner_id",
        "channel",
        "key",
    ]
    with engine.begin() as connection:  # a REST key spelled like a message's old key is another row
        connection.execute(
            text(
                "INSERT INTO idempotent_requests (partner_id, channel, key, request_hash, status, response, "
                "created_at) VALUES ('p2', 'rest', 'amqp:k-2', 'h', 201, 'rest', CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()

    command.downgrade(alembic_config("licensing", url), "0007")
    engine = make_engine(url)
    with engine.connect() as connection:
        back = set(connection.execute(text("SELECT partner_id, key, response FROM idempotent_requests")))
    # one key space again: p2's REST key "amqp:k-2" gives way to its message k-2
    assert back == {
        ("p1", "amqp:m-1", "amqp:m-1"),
        ("p1", "m-1", "m-1"),
        ("p1", "k-2", "k-2"),
        ("p2", "amqp:k-2", "amqp:k-2"),
    }
    assert inspect(engine).get_pk_constraint("idempotent_requests")["constrained_columns"] == ["partner_id", "key"]
    engine.dispose()
