"""Gateway sessions: tokens stored hashed, idle and absolute timeouts."""

from __future__ import annotations

import time

from gateway.models import Session
from gateway.sessions import SessionStore, could_be_session_token, token_hash
from sqlalchemy import select

from shared import migrations
from shared.db import Database

USER = {"id": "u-1", "email": "ada@example.com", "name": "Ada", "staff": False}


def store(tmp_path, idle: int, absolute: int) -> SessionStore:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrations.upgrade("gateway", url)
    return SessionStore(Database(url), idle, absolute)


def test_tokens_are_random_and_stored_only_as_hashes(tmp_path):
    sessions = store(tmp_path, 60, 3600)
    tokens = {sessions.open(USER)[0] for _ in range(20)}
    assert len(tokens) == 20 and all(len(token) >= 43 for token in tokens)  # 32 bytes, base64
    with sessions.database.unit_of_work() as db:
        stored = set(db.scalars(select(Session.token_hash)))
    assert not tokens & stored and {token_hash(t) for t in tokens} == stored


def test_a_session_ends_after_its_idle_timeout(tmp_path):
    sessions = store(tmp_path, idle=1, absolute=3600)
    token, _ = sessions.open(USER)
    assert sessions.find(token) is not None
    time.sleep(1.2)
    assert sessions.find(token) is None


def test_a_session_ends_at_its_absolute_timeout_however_busy(tmp_path):
    sessions = store(tmp_path, idle=3600, absolute=1)
    token, _ = sessions.open(USER)
    time.sleep(1.2)
    assert sessions.find(token) is None


def test_closing_a_session_works_at_once(tmp_path):
    sessions = store(tmp_path, 60, 3600)
    token, session = sessions.open(USER)
    sessions.close(session.id)
    assert sessions.find(token) is None


def test_what_cannot_be_a_session_token_is_never_looked_up(tmp_path):
    """A partner's API key, a stray cookie or an empty bearer is no session: the store answers
    None without its database (which may be away: the partner API must not notice)."""
    sessions = store(tmp_path, 60, 3600)
    token, _ = sessions.open(USER)
    sessions.database.engine.dispose()
    sessions.database = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")  # unreachable
    partner_key = "cc_0123456789abcdef_" + token  # licensing's shape: cc_<key id>_<secret>
    for not_a_token in (partner_key, "", "x" * 42, "x" * 44, token + "\n", token[:-1] + "."):
        assert sessions.find(not_a_token) is None
    assert could_be_session_token(token)
