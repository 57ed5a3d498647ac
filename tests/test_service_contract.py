"""What every component promises at its edge, checked on each one's real app: problem+json
for every error, health and readiness, an OpenAPI document, signed identities only."""

from __future__ import annotations

import importlib
import time

import jwt
import pytest

from shared import auth, migrations
from shared.auth import Principal
from tests.conftest import TEST_SECRET

COMPONENTS = ("identity", "licensing", "distribution", "forum", "gateway")
PROBLEM = "application/problem+json"


@pytest.fixture(params=COMPONENTS)
def client(request, settings_for, tmp_path):
    component = request.param
    settings = settings_for(component, f"sqlite:///{tmp_path / component}.db", max_content_length=64 * 1024)
    migrations.upgrade(component, settings.database_url)
    app = importlib.import_module(f"{component}.app").create_app(settings)
    app.testing = True
    client = app.test_client()
    client.component = component
    return client


def assert_problem(response, status: int):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["type"].startswith("urn:customer-center:problem:")
    assert body["title"] and body["detail"]
    return body


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["database"] is True


def test_openapi_document_and_docs_page(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.") and document["paths"]
    assert client.get("/docs").status_code == 200


def test_unknown_path_is_a_problem(client):
    assert_problem(client.get("/api/v1/no-such-thing/really"), 404)


# One state-changing endpoint per component that takes a JSON body.
WRITES = {
    "identity": "/internal/v1/credentials/verify",
    "licensing": "/api/v1/admin/customers",
    "distribution": "/api/v1/admin/news",
    "forum": "/api/v1/admin/forum/categories",
    "gateway": "/api/v1/sessions",
}


def authorised(component: str) -> dict[str, str]:
    """The identity the gateway would pass: staff for services, the gateway for identity."""
    principal = Principal("gateway", kind="service") if component == "identity" else Principal("u-1", staff=True)
    return {auth.HEADER: auth.issue(TEST_SECRET, component, principal)}


def test_wrong_method_is_a_problem(client):
    assert_problem(client.open(WRITES[client.component], method="TRACE"), 405)


def test_wrong_content_type_is_415(client):
    response = client.post(
        WRITES[client.component], data="a=b", content_type="text/plain", headers=authorised(client.component)
    )
    assert_problem(response, 415)


def test_broken_json_is_400(client):
    response = client.post(
        WRITES[client.component], data="{broken", content_type="application/json", headers=authorised(client.component)
    )
    assert_problem(response, 400)


def test_schema_violation_is_422_with_field_errors(client):
    response = client.post(WRITES[client.component], json={"unexpected": 1}, headers=authorised(client.component))
    body = assert_problem(response, 422)
    assert body["errors"] and all({"field", "message"} <= set(e) for e in body["errors"])
    assert any(e["field"] == "unexpected" for e in body["errors"]), "unknown fields are rejected, never bound"


def test_oversized_body_is_413(client):
    response = client.post(
        WRITES[client.component],
        data=b'{"x": "' + b"a" * 100_000 + b'"}',
        content_type="application/json",
        headers=authorised(client.component),
    )
    assert_problem(response, 413)


def test_answers_carry_a_correlation_id_and_nosniff(client):
    response = client.get("/healthz", headers={"X-Correlation-ID": "corr-123"})
    assert response.headers["X-Correlation-ID"] == "corr-123"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


SERVICES = COMPONENTS[:-1]
# A read for a signed-in user in each service.
READS = {
    "identity": "/api/v1/me",
    "licensing": "/api/v1/admin/customers/100001",
    "distribution": "/api/v1/news",
    "forum": "/api/v1/forum/categories",
}


@pytest.fixture(params=SERVICES)
def service_client(request, settings_for, tmp_path):
    component = request.param
    settings = settings_for(component, f"sqlite:///{tmp_path / component}.db")
    migrations.upgrade(component, settings.database_url)
    client = importlib.import_module(f"{component}.app").create_app(settings).test_client()
    client.component = component
    return client


def forged_tokens(component: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "u-1", "kind": "user", "staff": True, "aud": component, "iat": now, "exp": now + 60}
    return {
        "wrong secret": jwt.encode(claims, "not-the-secret-" + "y" * 40, algorithm="HS256"),
        "expired": jwt.encode({**claims, "iat": now - 120, "exp": now - 60}, TEST_SECRET, algorithm="HS256"),
        "for another service": jwt.encode({**claims, "aud": "elsewhere"}, TEST_SECRET, algorithm="HS256"),
        "unsigned": jwt.encode(claims, None, algorithm="none"),
        "garbage": "not.a.token",
    }


def test_a_service_trusts_no_unsigned_or_forged_identity(service_client):
    component = service_client.component
    for label, token in forged_tokens(component).items():
        response = service_client.get(READS[component], headers={auth.HEADER: token})
        assert response.status_code == 401, label
    # A plain header claiming to be someone is not an identity either.
    assert service_client.get(READS[component], headers={"X-User-Id": "u-1", "X-Staff": "true"}).status_code == 401


def test_staff_routes_refuse_a_signed_in_customer(service_client):
    if service_client.component == "identity":
        path = "/api/v1/admin/customer-profiles/100001"
    else:
        path = {
            "licensing": READS["licensing"],
            "distribution": "/api/v1/admin/news",
            "forum": "/api/v1/admin/forum/categories",
        }[service_client.component]
    token = auth.issue(TEST_SECRET, service_client.component, Principal("u-2", staff=False))
    method = service_client.get if service_client.component in ("identity", "licensing") else service_client.post
    kwargs = {} if method is service_client.get else {"json": {}}
    assert_problem(method(path, headers={auth.HEADER: token}, **kwargs), 403)
