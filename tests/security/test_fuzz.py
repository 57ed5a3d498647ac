"""Schemathesis against every component's OpenAPI document, in-process (WSGI), on PostgreSQL.

For each service (identity, licensing, distribution, forum) and each caller (anonymous, the
member of a seeded customer, vendor staff; for identity also the gateway itself, which alone
may call `/internal/...`), every documented operation gets generated requests, valid and
invalid (schemathesis' `positive` and `negative` modes; its coverage phase adds boundary
values, missing and wrongly typed fields). A valid request's path parameters are sometimes
swapped for the seeded world's ids (`world.known_path_values()`), so requests get past the
`404` to the code behind it; licensing's requests carry a partner's API key, for partner
sales. The gateway is fuzzed on its own document (sessions) and, as the public entrance, on
each service's document through its forwarding, with a member's session token.

The caller's identity is signed when each request is sent (`call_and_validate(headers=...)`),
not by a schemathesis auth provider: schemathesis applies auth when it builds a case, and it
builds its coverage-phase cases while collecting the tests, before the seeded people exist
and longer ago than the 60 seconds an identity token lives.

Checks on every answer:
- `not_a_server_error`: no 5xx, whatever the input;
- `response_schema_conformance`: the body matches what the document says for that status —
  every error resolves to the `default` response, `application/problem+json` with `Problem`;
- `content_type_conformance`: the media type is a documented one (so an error answered as
  `application/json`, or a list answered as `text/html`, is caught);
- `negative_data_rejection`: a request the document calls invalid is refused with a 4xx;
- `problem_details` (ours): every 4xx is problem+json with `type`, `title`, `status` (equal to the
  HTTP status) and `detail`, and a 422 lists `errors` of `{field, message}`.

`status_code_conformance` is left out on purpose: every operation documents `default` (an error
may be a 401, 403, 404, 409, 410, 413, 415 or 429, as api.md describes), so that check can never
fail and proves nothing; the statuses are pinned down by the hand-written tests instead.
`positive_data_acceptance` is left out too: valid-looking input is rightly refused for reasons
no schema carries (a company ID's check digit, an unknown installation number, an id that does
not exist, a throttle).

Bounded for CI: a fixed seed, derandomized generation, `MAX_EXAMPLES` per operation, no
example database. `pytest tests/security -k fuzz` runs this module alone.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from tests.security.conftest import ROLES, SERVICES, World, openapi_document

# CI's bound; raise both (FUZZ_MAX_EXAMPLES=200 FUZZ_SEED=1 ...) to search harder by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES") or 12)
SEED = int(os.environ.get("FUZZ_SEED") or 20261128)

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)

# Seeded values for path parameters, filled in by the `world` (known only once it exists).
KNOWN: dict[str, list] = {}


@schemathesis.check
def problem_details(ctx, response, case) -> None:
    """Every 4xx is a problem document as api.md promises it."""
    if not 400 <= response.status_code < 500:
        return
    media_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    assert media_type == "application/problem+json", f"a {response.status_code} answered as {media_type!r}"
    if case.method.upper() == "HEAD":
        return  # no body
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("status") == response.status_code, f"status {body.get('status')!r} in a {response.status_code}"
    assert str(body.get("type", "")).startswith("urn:customer-center:problem:"), body
    assert body.get("title") and body.get("detail"), body
    if response.status_code == 422 and body.get("type") == "urn:customer-center:problem:validation-failed":
        errors = body.get("errors")
        assert errors and all({"field", "message"} <= set(e) for e in errors), body


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
    problem_details,
]


DOCUMENTS = {component: openapi_document(component) for component in (*SERVICES, "gateway")}


def _seeded_ids(context, case):
    """A valid case sometimes gets the seeded world's ids for its path parameters instead of the
    generated ones. An invalid (negative) case is left alone: its wrong values are the point."""
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return st.just(case)
    seeded = {name: KNOWN[name] for name in case.path_parameters or {} if KNOWN.get(name)}
    if not seeded:
        return st.just(case)

    def with_known(values):
        case.path_parameters = {**case.path_parameters, **values}
        return case

    known = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in seeded.items()})
    return st.one_of(st.just(case), known.map(with_known))


def _schema(component: str):
    schema = schemathesis.openapi.from_dict(DOCUMENTS[component], config=CONFIG)
    schema.hook("flatmap_case")(_seeded_ids)
    return schema


@pytest.fixture(scope="module", autouse=True)
def _seeded_values(world: World):
    """The schemas are made at import, the world in a fixture: generation reads its ids here."""
    KNOWN.update({name: [v for v in values if v] for name, values in world.known_path_values().items()})
    yield
    KNOWN.clear()


def _validate(case, app, headers: dict[str, str]) -> None:
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)


# --- each service, directly, as each caller ------------------------------------------------
def _service_test(service: str):
    schema = _schema(service)
    callers = (*ROLES, "gateway") if service == "identity" else ROLES

    @schema.parametrize()
    @pytest.mark.parametrize("caller", callers)
    def test(case, caller: str, world: World):
        headers = world.headers(service, caller)
        if service == "licensing":  # partners' systems authenticate with an API key instead
            headers["Authorization"] = f"Bearer {world.partner_key}"
        _validate(case, world.apps[service], headers)

    test.__name__ = f"test_fuzz_{service}"
    test.__doc__ = f"{service}'s document, every operation, as each caller: no 5xx, answers as documented."
    return test


# --- the gateway: its own document, and every service's through it --------------------------
def _gateway_headers(world: World, caller: str) -> dict[str, str]:
    # A fresh session for each request: a case may end it (DELETE /api/v1/sessions/current).
    return {"Authorization": f"Bearer {world.open_session(caller)}"} if caller != "anonymous" else {}


@_schema("gateway").parametrize()
@pytest.mark.parametrize("caller", ["anonymous", "member"])
def test_fuzz_gateway(case, caller: str, world: World):
    _validate(case, world.gateway, _gateway_headers(world, caller))


def _through_gateway_test(service: str):
    schema = _schema(service).exclude(path_regex="^/internal/")

    @schema.parametrize()
    def test(case, world: World):
        # The gateway passes the service's answer on (or answers 404/503 itself, as problems).
        _validate(case, world.gateway, _gateway_headers(world, "member"))

    test.__name__ = f"test_fuzz_{service}_through_gateway"
    test.__doc__ = f"{service}'s document through the gateway's forwarding, as a signed-in member."
    return test


for _service in SERVICES:
    for _test in (_service_test(_service), _through_gateway_test(_service)):
        globals()[_test.__name__] = _test

del _service, _test
