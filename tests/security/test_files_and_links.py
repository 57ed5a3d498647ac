"""File names and signed download links (quality.md: "Download names never become file-system
paths; signed links are HMAC over (file, customer, expiry)").

- Uploading a file (`PUT /api/v1/admin/{releases,documents}/{id}/files/{name}`) under a name
  that tries to leave its place (`../`, `%2e%2e%2f`, encoded slashes and backslashes, absolute
  paths, NUL and other control characters) is refused (404 when the router never matches, 422
  when the name is refused), nothing is stored, and no file appears outside the storage root.
  Storage keys are random hex whatever the name; odd but harmless names are stored and served
  under their own name.
- A download link whose file, customer, expiry or signature was changed is a 403; one past its
  expiry (signed as such) a 410; the same tricks in a download URL's name are a 404. Directly
  and through the gateway, which is where the public uses them.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from distribution import links
from distribution.models import ReleaseFile
from sqlalchemy import func, select

from tests.conftest import TEST_SECRET
from tests.security.conftest import World, assert_problem, chunked

TRAVERSALS = {
    "dot dot slash": "../../../../tmp/escaped.exe",
    "encoded dot dot slash": "%2e%2e%2f%2e%2e%2fescaped.exe",
    "encoded slash": "a%2Fb.exe",
    "backslash": "..\\..\\escaped.exe",
    "encoded backslash": "..%5C..%5Cescaped.exe",
    "absolute path": "/etc/passwd",
    "encoded absolute path": "%2Fetc%2Fpasswd",
    "windows drive": "C:%5CWindows%5Cescaped.exe",
    "dot dot": "..",
    "dot": ".",
    "hidden": ".htaccess",
    "nul": "setup.exe%00.txt",
    "newline": "setup%0A.exe",
    "carriage return line feed": "setup%0D%0AX-Injected: 1.exe",
    "delete character": "setup%7F.exe",
    "too long": "a" * 201,
}


@pytest.fixture(scope="module")
def draft_release(world: World) -> int:
    """A release of this module's own, not published (files may be uploaded to it)."""
    body = {"product": "ucetnictvi", "version": "2027.0-beta", "kind": "update", "released_on": "2027-01-01"}
    answer = world.call("distribution", "POST", "/api/v1/admin/releases", body=body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["id"]


def _storage_files(world: World) -> set[Path]:
    root = Path(world.apps["distribution"].extensions["storage"].root)
    return {p for p in root.rglob("*") if p.is_file()}


def _file_rows(world: World) -> int:
    with world.apps["distribution"].extensions["database"].unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(ReleaseFile))


def _upload(world: World, path: str, data: bytes, via_gateway: bool):
    headers = {"Content-Type": "application/octet-stream"}
    if via_gateway:
        headers["Authorization"] = f"Bearer {world.open_session('staff')}"
        return world.gateway.test_client().put(path, data=data, headers=headers)
    return world.call("distribution", "PUT", path, data=data, headers=headers)


@pytest.mark.parametrize("via_gateway", [False, True], ids=["direct", "via-gateway"])
@pytest.mark.parametrize("owner", ["releases", "documents"])
@pytest.mark.parametrize("label", TRAVERSALS)
def test_an_upload_name_never_becomes_a_path(
    world: World, draft_release: int, label: str, owner: str, via_gateway: bool, tmp_path
):
    owner_id = draft_release if owner == "releases" else world.document_id
    before_files, before_rows = _storage_files(world), _file_rows(world)
    answer = _upload(world, f"/api/v1/admin/{owner}/{owner_id}/files/{TRAVERSALS[label]}", b"MZ evil", via_gateway)
    assert_problem(answer, (404, 422))
    assert _storage_files(world) == before_files, "a refused upload left a file behind"
    assert _file_rows(world) == before_rows
    assert not Path("/tmp/escaped.exe").exists() and not (tmp_path.parent / "escaped.exe").exists()


HARMLESS = [
    "Instalace POHODA 2026 (CZ) – verze 1.2 [x64] ~ü.exe",
    "%2e%2e%2fescaped.exe",  # sent double-encoded: a name with percent signs, never decoded again
    "50% sleva; ceník & podmínky.pdf",
    "setup.exe.",
]


@pytest.mark.parametrize("via_gateway", [False, True], ids=["direct", "via-gateway"])
@pytest.mark.parametrize("name", HARMLESS)
def test_an_odd_but_harmless_name_is_stored_under_a_random_key(
    world: World, draft_release: int, name: str, via_gateway: bool
):
    path = f"/api/v1/admin/releases/{draft_release}/files/{quote(name, safe='')}"
    stored = _upload(world, path, b"MZ harmless", via_gateway)
    assert stored.status_code == 201, stored.get_data(as_text=True)
    assert stored.get_json()["name"] == name and stored.get_json()["size"] == len(b"MZ harmless")
    with world.apps["distribution"].extensions["database"].unit_of_work() as session:
        key = session.get(ReleaseFile, stored.get_json()["file_id"]).storage_key
    assert key.isalnum() and name not in key


def test_a_chunked_upload_through_the_gateway_arrives_whole(world: World, draft_release: int):
    """Without Content-Length (curl -T -, or the edge passing a chunked request on) the gateway
    must still forward the body: it used to forward nothing, and an empty file was stored."""
    data = b"chunked installer bytes " * 5000
    path = f"/api/v1/admin/releases/{draft_release}/files/chunked.exe"
    headers = {"Authorization": f"Bearer {world.open_session('staff')}", "Content-Type": "application/octet-stream"}
    answer = world.gateway.test_client().put(path, headers=headers, **chunked(data))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["size"] == len(data)


def test_a_chunked_upload_over_http_arrives_whole(world: World, draft_release: int):
    """The same over real HTTP: a client sending the file chunked (a generator body)."""
    import requests

    from tests.support import serving

    data = b"streamed installer bytes " * 20_000
    path = f"/api/v1/admin/releases/{draft_release}/files/streamed.exe"
    headers = {"Authorization": f"Bearer {world.open_session('staff')}", "Content-Type": "application/octet-stream"}
    with serving(world.gateway) as url:
        answer = requests.put(
            url + path, data=(data[i : i + 65536] for i in range(0, len(data), 65536)), headers=headers
        )
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert answer.status_code == 201, answer.text
    assert answer.json()["size"] == len(data)


# --- signed links --------------------------------------------------------------------------
def _link(world: World, customer: str | None = None, ttl: int = 600, file_id: int | None = None) -> str:
    """A link as distribution makes it (path and query), for the member's customer by default."""
    url = links.make(
        TEST_SECRET,
        "",
        file_id or world.file_id,
        world.file_name,
        customer or world.customer,
        ttl,
    )
    return url


def _get(world: World, url: str, via_gateway: bool):
    app = world.gateway if via_gateway else world.apps["distribution"]
    return app.test_client().get(url)


def _with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v is not None}
    return parts.path + "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())


VIA = pytest.mark.parametrize("via_gateway", [False, True], ids=["direct", "via-gateway"])


@VIA
def test_a_valid_link_downloads(world: World, via_gateway: bool):
    answer = _get(world, _link(world), via_gateway)
    assert answer.status_code == 200
    assert answer.data == b"installer bytes " * 64


def _tampered(world: World) -> dict[str, str]:
    url = _link(world)
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    other_file = _link(world).replace(f"/files/{world.file_id}/", f"/files/{world.file_id + 1000}/")
    return {
        "signature flipped": _with_query(url, signature=flipped),
        "signature upper-cased": _with_query(url, signature=signature.upper()),
        "signature cut short": _with_query(url, signature=signature[:32]),
        "signature missing": _with_query(url, signature=None),
        "signature empty": _with_query(url, signature=""),
        "signature not hex": _with_query(url, signature="z" * 64),
        "another customer": _with_query(url, customer=world.other_customer),
        "customer missing": _with_query(url, customer=None),
        "expiry extended": _with_query(url, expires=expires + 3600),
        "expiry not a number": _with_query(url, expires="soon"),
        "expiry huge": _with_query(url, expires="9" * 400),
        "expiry missing": _with_query(url, expires=None),
        "another file": other_file,
        "signed with another secret": _with_query(
            url, signature=links.signature("another-secret-" + "y" * 40, world.file_id, world.customer, expires)
        ),
    }


@VIA
@pytest.mark.parametrize(
    "label",
    [
        "signature flipped",
        "signature upper-cased",
        "signature cut short",
        "signature missing",
        "signature empty",
        "signature not hex",
        "another customer",
        "customer missing",
        "expiry extended",
        "expiry not a number",
        "expiry huge",
        "expiry missing",
        "another file",
        "signed with another secret",
    ],
)
def test_a_tampered_link_is_403(world: World, label: str, via_gateway: bool):
    body = assert_problem(_get(world, _tampered(world)[label], via_gateway), 403)
    assert body["type"].endswith(":bad-signature")


@VIA
def test_an_expired_link_is_410(world: World, via_gateway: bool):
    expired = _link(world, ttl=-5)
    body = assert_problem(_get(world, expired, via_gateway), 410)
    assert body["type"].endswith(":link-expired")


@VIA
def test_a_link_for_a_customer_not_entitled_is_404(world: World, via_gateway: bool):
    """Signed correctly, but for a customer without a license for the release."""
    assert_problem(_get(world, _link(world, customer=world.other_customer), via_gateway), 404)


@VIA
@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "setup.exe%00.txt",
        "%2Fetc%2Fpasswd",
        "setup.exe%2F..%2F..%2Fvar",
        "..",
        "setup.EXE",
        "setup.exe%20",
    ],
)
def test_tricks_in_a_download_name_are_404(world: World, name: str, via_gateway: bool):
    """The link's signature is valid for the file: only the name in its path was changed."""
    url = _link(world).replace(f"/{world.file_name}?", f"/{name}?")
    assert_problem(_get(world, url, via_gateway), 404)


@VIA
@pytest.mark.parametrize("suffix", ["/../../../etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd"])
def test_path_tricks_after_a_download_url_are_404(world: World, suffix: str, via_gateway: bool):
    parts = urlsplit(_link(world))
    assert_problem(_get(world, parts.path + suffix + "?" + parts.query, via_gateway), (400, 404))


def test_links_expire_by_the_server_clock(world: World, monkeypatch):
    """A link signed for a minute works now and not a minute later: only the server's clock counts."""
    url = _link(world, ttl=60)
    assert _get(world, url, False).status_code == 200
    later = time.time() + 61
    monkeypatch.setattr(links.time, "time", lambda: later)
    assert_problem(_get(world, url, False), 410)


# --- paths at the gateway -----------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/forum/../admin/customers",
        "/api/v1/forum/%2e%2e/admin/customers",
        "/api/v1/forum/%2E%2E%2Fadmin%2Fcustomers",
        "/api/v1/customers/100001/../../admin/customers",
        "/api/v1/customers/100001%2F..%2F..%2Fadmin/customers",
        "/api/v1/./admin/customers",
        "/api/v1//admin/customers",
        "/api/v1/admin/customers%00",
        "/api/v1/admin/customers/%2e%2e",
        "/api/v1/%00",
        "/api/v1/" + "a/" * 2000,
    ],
)
def test_path_tricks_at_the_gateway_reach_no_other_route(world: World, path: str):
    """Dot segments (plain or encoded), encoded slashes and NUL: a 404 (or 400), never another
    service's route, never a 5xx."""
    client = world.gateway.test_client()
    headers = {"Authorization": f"Bearer {world.open_session('member')}"}
    for method in ("GET", "POST"):
        answer = client.open(path, method=method, json={} if method == "POST" else None, headers=headers)
        if answer.status_code == 308:  # werkzeug's redirect to the path with slashes merged
            assert answer.headers["Location"].endswith("/api/v1/admin/customers"), answer.headers
            continue
        assert answer.status_code in (400, 404, 405), f"{method} {path}: {answer.status_code}"
        assert_problem(answer, answer.status_code)
