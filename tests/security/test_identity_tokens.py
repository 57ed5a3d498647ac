"""Forged, stolen and expired identities (README: "Services trust nothing else" than the
gateway's signed, 60-second, audience-bound `X-Identity`).

At each service, on a staff-only write: a token signed with another secret, for another
service, expired, unsigned (`alg: none` in any spelling), signed with another algorithm, or
missing a required claim is no identity: the caller is anonymous (401), and nothing is written.
At the gateway: an `X-Identity` the client sends is never passed on (the gateway signs its own),
so a perfectly valid staff token in a client's hands opens nothing.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from distribution.models import NewsItem
from forum.models import Category
from licensing.models import Customer
from sqlalchemy import func, select

from shared import auth
from tests.conftest import TEST_SECRET
from tests.security.conftest import World, assert_problem
from tests.support import valid_company_id

# A staff-only write per service, the table it writes, and a body it would accept.
WRITES = {
    "licensing": (
        "/api/v1/admin/customers",
        Customer,
        lambda n: {
            "company_id": valid_company_id(7000 + n),
            "company_name": f"Forged {n}",
            "billing_address": {"street": "A 1", "city": "B", "postal_code": "1"},
        },
    ),
    "distribution": ("/api/v1/admin/news", NewsItem, lambda n: {"kind": "news", "title": f"Forged {n}", "body": "x"}),
    "forum": ("/api/v1/admin/forum/categories", Category, lambda n: {"name": f"Forged {n}"}),
}


def _unsigned(claims: dict, alg: str) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


def forgeries(world: World, service: str) -> dict[str, str]:
    now = int(time.time())
    staff = world.principal("staff")
    claims = {"sub": staff.subject, "kind": "user", "staff": True, "aud": service, "iat": now, "exp": now + 60}
    other = "forum" if service != "forum" else "licensing"
    return {
        "another secret": jwt.encode(claims, "not-the-secret-" + "y" * 40, algorithm="HS256"),
        "another service's token": auth.issue(TEST_SECRET, other, staff),
        "no audience": jwt.encode({k: v for k, v in claims.items() if k != "aud"}, TEST_SECRET, algorithm="HS256"),
        "expired": jwt.encode({**claims, "iat": now - 120, "exp": now - 61}, TEST_SECRET, algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, TEST_SECRET, algorithm="HS256"),
        "no issued-at": jwt.encode({k: v for k, v in claims.items() if k != "iat"}, TEST_SECRET, algorithm="HS256"),
        "no subject": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, TEST_SECRET, algorithm="HS256"),
        "alg none": _unsigned(claims, "none"),
        "alg None": _unsigned(claims, "None"),
        "alg NONE": _unsigned(claims, "NONE"),
        "alg HS256 without a signature": _unsigned(claims, "HS256"),
        "alg HS512 with the secret": jwt.encode(claims, TEST_SECRET, algorithm="HS512"),
        "signature of another token": auth.issue(TEST_SECRET, service, world.principal("member")).rsplit(".", 1)[0]
        + "."
        + auth.issue(TEST_SECRET, service, staff).rsplit(".", 1)[1],
        "garbage": "not.a.token",
        "empty": "",
        "bearer prefix": "Bearer " + auth.issue(TEST_SECRET, service, staff),
        "100 kB": "a" * 100_000,
    }


def _rows(world: World, service: str, model) -> int:
    with world.apps[service].extensions["database"].unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model))


FORGERY_LABELS = [
    "another secret",
    "another service's token",
    "no audience",
    "expired",
    "no expiry",
    "no issued-at",
    "no subject",
    "alg none",
    "alg None",
    "alg NONE",
    "alg HS256 without a signature",
    "alg HS512 with the secret",
    "signature of another token",
    "garbage",
    "empty",
    "bearer prefix",
    "100 kB",
]


HS512_KEY_WARNING = "ignore::jwt.warnings.InsecureKeyLengthWarning"


@pytest.mark.filterwarnings(HS512_KEY_WARNING)
@pytest.mark.parametrize("label", FORGERY_LABELS)
@pytest.mark.parametrize("service", WRITES)
def test_a_forged_identity_is_anonymous_and_writes_nothing(world: World, service: str, label: str):
    path, model, body = WRITES[service]
    before = _rows(world, service, model)
    token = forgeries(world, service)[label]
    answer = world.apps[service].test_client().post(path, json=body(len(label)), headers={auth.HEADER: token})
    assert_problem(answer, 401)
    assert _rows(world, service, model) == before


@pytest.mark.filterwarnings(HS512_KEY_WARNING)
@pytest.mark.parametrize("label", FORGERY_LABELS)
def test_identity_trusts_no_forged_gateway(world: World, label: str):
    """identity's internal calls (verifying passwords) are for the gateway's own token only."""
    token = forgeries(world, "identity")[label]
    client = world.apps["identity"].test_client()
    answer = client.post(
        "/internal/v1/credentials/verify",
        json={"email": "ada@example.com", "password": "correct horse battery staple"},
        headers={auth.HEADER: token},
    )
    assert_problem(answer, 401)
    profile = client.get(f"/api/v1/admin/customer-profiles/{world.customer}", headers={auth.HEADER: token})
    assert_problem(profile, 401)


def test_a_valid_token_is_accepted(world: World):
    """The same requests with the real thing: the refusals above are about the token alone."""
    path, model, body = WRITES["forum"]
    answer = world.call("forum", "POST", path, role="staff", body=body(999))
    assert answer.status_code == 201, answer.get_data(as_text=True)


# --- at the gateway ------------------------------------------------------------------------
@pytest.mark.parametrize("service", WRITES)
@pytest.mark.parametrize("header", ["X-Identity", "x-identity", "X-IDENTITY"])
def test_the_gateway_never_passes_on_a_clients_identity(world: World, service: str, header: str):
    """A client holding a valid staff token for the service (as if leaked) sends it to the
    gateway: the service sees the caller the gateway knows (anonymous here, a member below)."""
    path, model, body = WRITES[service]
    before = _rows(world, service, model)
    leaked = auth.issue(TEST_SECRET, service, world.principal("staff"), ttl=600)
    client = world.gateway.test_client()
    assert_problem(client.post(path, json=body(1), headers={header: leaked}), 401)
    member = {header: leaked, "Authorization": f"Bearer {world.open_session('member')}"}
    assert_problem(client.post(path, json=body(2), headers=member), 403)
    assert _rows(world, service, model) == before


def test_the_gateway_does_not_route_internal_calls(world: World):
    leaked = auth.issue(TEST_SECRET, "identity", world.principal("gateway"), ttl=600)
    answer = world.gateway.test_client().post(
        "/internal/v1/credentials/verify",
        json={"email": "ada@example.com", "password": "correct horse battery staple"},
        headers={auth.HEADER: leaked},
    )
    assert answer.status_code == 404  # not an API path: the portal's own "not found" page


def test_a_forged_session_token_is_anonymous_at_the_gateway(world: World):
    client = world.gateway.test_client()
    for token in ("", "x", "a" * 10_000, world.open_session("member") + "x", "Bearer", "null"):
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert_problem(answer, 401)
        client.set_cookie("cc_session", token[:3000] or "x")
        assert_problem(client.get("/api/v1/me"), 401)
        client.delete_cookie("cc_session")
