"""The gateway reuses a caller's signed identity token for a short while (it was a third of
its CPU per forwarded request); every token it sends must still be valid for long enough."""

from __future__ import annotations

import jwt
import pytest

from gateway import upstream as upstream_module
from shared import auth
from shared.auth import TOKEN_TTL, Principal
from shared.config import Settings

SECRET = "s" * 64


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(upstream_module.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture
def gateway_upstream() -> upstream_module.Upstream:
    return upstream_module.Upstream(Settings(service="gateway", database_url="sqlite://", internal_auth_secret=SECRET))


def token(upstream: upstream_module.Upstream, service: str, principal: Principal) -> str:
    return upstream.identity_header(service, principal)[auth.HEADER]


def test_same_caller_and_service_reuse_the_token_until_it_is_due(gateway_upstream, clock, monkeypatch):
    signed = []
    real_issue = auth.issue
    monkeypatch.setattr(auth, "issue", lambda *args: signed.append(args) or real_issue(*args))
    alice = Principal(subject="u-1", email="a@example.cz", session_id="s-1", client="10.0.0.1")
    first = token(gateway_upstream, "forum", alice)
    clock[0] += upstream_module.TOKEN_REUSE
    assert token(gateway_upstream, "forum", alice) == first
    assert len(signed) == 1
    clock[0] += 0.5
    assert auth.verify(SECRET, "forum", token(gateway_upstream, "forum", alice)).email == "a@example.cz"
    assert len(signed) == 2


def test_tokens_are_per_service_and_per_caller(gateway_upstream, clock):
    alice = Principal(subject="u-1", session_id="s-1", client="10.0.0.1")
    alice_elsewhere = Principal(subject="u-1", session_id="s-1", client="10.0.0.2")
    bob = Principal(subject="u-2", session_id="s-2", client="10.0.0.1")
    forum = token(gateway_upstream, "forum", alice)
    assert auth.verify(SECRET, "licensing", token(gateway_upstream, "licensing", alice)).subject == "u-1"
    with pytest.raises(jwt.InvalidAudienceError):
        auth.verify(SECRET, "licensing", forum)
    assert auth.verify(SECRET, "forum", token(gateway_upstream, "forum", bob)).subject == "u-2"
    assert auth.verify(SECRET, "forum", token(gateway_upstream, "forum", alice_elsewhere)).client == "10.0.0.2"


def test_a_reused_token_always_has_most_of_its_life_left(gateway_upstream, clock):
    claims = jwt.decode(
        token(gateway_upstream, "forum", Principal(subject="u-1")), SECRET, algorithms=["HS256"], audience="forum"
    )
    # Reused for at most upstream_module.TOKEN_REUSE seconds, so a service receives it with this much left.
    assert claims["exp"] - claims["iat"] - upstream_module.TOKEN_REUSE >= TOKEN_TTL / 2


def test_the_cache_stays_bounded(gateway_upstream, clock, monkeypatch):
    monkeypatch.setattr(upstream_module, "TOKEN_CACHE_SIZE", 50)
    for number in range(500):
        token(gateway_upstream, "forum", Principal(subject=f"u-{number}"))
    assert len(gateway_upstream._tokens) <= 50
