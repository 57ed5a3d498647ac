"""Rules 7, 10, 11: entitlement, signed downloads with Range, the update check, DVD shipments."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

INSTALLER = bytes(range(256)) * 4096  # 1 MiB of known bytes


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def downloads(distribution, number="100001", user="u-1"):
    answer = distribution.call("GET", f"/api/v1/customers/{number}/downloads", user=user)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["items"]


def test_upload_is_hashed_and_a_member_with_the_right_downloads_it(distribution):
    distribution.customer("100001")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCCC")
    distribution.member("u-1", "100001")
    distribution.release(files={"setup.exe": INSTALLER})
    [release] = downloads(distribution)
    [file] = release["files"]
    assert file["size"] == len(INSTALLER) and file["sha256"] == hashlib.sha256(INSTALLER).hexdigest()
    assert file["url"].startswith("https://portal.example/api/v1/files/")
    answer = distribution.client.get(local(file["url"]))
    assert answer.status_code == 200 and answer.data == INSTALLER
    assert answer.headers["Content-Length"] == str(len(INSTALLER)) and answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["ETag"] == f'"{file["sha256"]}"'
    history = distribution.call("GET", "/api/v1/customers/100001/download-history", user="u-1").get_json()["items"]
    assert [h["name"] for h in history] == ["setup.exe"]


def test_range_requests_are_byte_exact(distribution):
    distribution.customer("100001")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCCC")
    distribution.member("u-1", "100001")
    distribution.release(files={"setup.exe": INSTALLER})
    url = local(downloads(distribution)[0]["files"][0]["url"])
    part = distribution.client.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == INSTALLER[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(INSTALLER)}"
    tail = distribution.client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == INSTALLER[-10:]
    beyond = distribution.client.get(url, headers={"Range": f"bytes={len(INSTALLER)}-"})
    assert beyond.status_code == 416
    etag = part.headers["ETag"]
    resumed = distribution.client.get(url, headers={"Range": "bytes=500000-", "If-Range": etag})
    assert resumed.status_code == 206 and resumed.data == INSTALLER[500000:]
    changed = distribution.client.get(url, headers={"Range": "bytes=500000-", "If-Range": '"another-version"'})
    assert changed.status_code == 200 and changed.data == INSTALLER


def test_tampered_and_expired_links(distribution, monkeypatch):
    distribution.customer("100001")
    distribution.customer("100002", "Jiná a.s.")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCCC")
    distribution.member("u-1", "100001")
    distribution.release()
    url = downloads(distribution)[0]["files"][0]["url"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for field, value in (
        ("customer", "100002"),
        ("expires", str(int(query["expires"]) + 3600)),
        ("signature", "0" * 64),
    ):
        forged = "&".join(f"{k}={value if k == field else v}" for k, v in query.items())
        assert distribution.client.get(f"{parts.path}?{forged}").status_code == 403, field
    assert distribution.client.get(parts.path.replace("/files/", "/files/999/x/")).status_code == 404
    from distribution import links

    expired_at = int(time.time()) - 1
    signature = links.signature(
        distribution.app.extensions["settings"].internal_auth_secret,
        int(parts.path.split("/")[4]),
        "100001",
        expired_at,
    )
    expired = distribution.client.get(f"{parts.path}?customer=100001&expires={expired_at}&signature={signature}")
    assert expired.status_code == 410


def test_entitlement_follows_support_end_and_revocation(distribution):
    distribution.customer("100001")
    distribution.member("u-1", "100001")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCCC", support_until="2026-06-30")
    early = distribution.release(version="2026.1", released_on="2026-03-01")
    distribution.release(version="2026.2", released_on="2026-09-01")  # after support ended
    distribution.release(version="3.0", product="sklady", released_on="2026-03-01")  # no license for it
    assert [r["release_id"] for r in downloads(distribution)] == [early]
    # revoked (version 3), then an older "support_changed" arrives late: stays revoked
    distribution.license(
        "100001",
        "AAAAAA-BBBBBB-CCCCCC",
        status="revoked",
        support_until=None,
        version=3,
        type_="licensing.license.revoked",
    )
    distribution.license(
        "100001",
        "AAAAAA-BBBBBB-CCCCCC",
        support_until="2030-01-01",
        version=2,
        type_="licensing.license.support_changed",
    )
    assert downloads(distribution) == []


def test_unregistered_licenses_entitle_nothing_and_rights_are_checked_here(distribution):
    distribution.customer("100001")
    distribution.customer("100002", "Jiná a.s.")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCCC", status="unregistered", support_until=None)
    distribution.member("u-1", "100001")
    distribution.member("u-2", "100001", rights=("news",))
    distribution.release()
    assert downloads(distribution) == []
    assert distribution.call("GET", "/api/v1/customers/100001/downloads", user="u-2").status_code == 403
    assert distribution.call("GET", "/api/v1/customers/100002/downloads", user="u-1").status_code == 404
    assert distribution.call("GET", "/api/v1/customers/100001/downloads").status_code == 401


def test_the_update_check_offers_the_newest_entitled_release(distribution):
    distribution.customer("100001")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCCC", support_until="2026-12-31")
    distribution.release(version="2026.1", released_on="2026-03-01")
    newest = distribution.release(version="2026.10", released_on="2026-10-01")
    distribution.release(version="2027.1", released_on="2027-02-01")  # after support: not offered
    distribution.release(version="2026.11", released_on="2026-11-01", channel="beta")

    def check(version, **extra):
        return distribution.client.get(
            "/api/v1/updates", query_string={"installation_number": "aaaaaa bbbbbb cccccc", "version": version, **extra}
        )

    answer = check("2026.1")
    assert answer.status_code == 200 and answer.get_json()["update_available"] is True
    assert answer.get_json()["release"]["release_id"] == newest and answer.get_json()["release"]["files"][0]["url"]
    assert check("2026.10").get_json() == {"update_available": False, "release": None}
    assert check("2026.10", channel="beta").get_json()["release"]["version"] == "2026.11"
    unknown = distribution.client.get(
        "/api/v1/updates", query_string={"installation_number": "ZZZZZZ-ZZZZZZ-ZZZZZZ", "version": "1"}
    )
    assert unknown.status_code == 404


def test_a_full_release_ships_one_dvd_per_customer_to_the_address_at_publish_time(distribution):
    address = {"street": "Skladová 3", "city": "Brno", "postal_code": "60200", "country": "CZ"}
    distribution.customer("100001")
    distribution.customer("100002", "Stahovač a.s.")
    for number in ("100001", "100002"):
        distribution.license(number, f"AAAAAA-BBBBBB-CCCCC{number[-1]}")
    distribution.event(
        "identity.customer.contact_changed",
        {
            "customer_number": "100001",
            "company_name": "Účetnictví Novák s.r.o.",
            "delivery_address": address,
            "delivery_method": "dvd",
            "version": 1,
        },
        "identity",
    )
    release_id = distribution.release(kind="full", publish=False)
    for _ in range(3):  # publishing again (a retry) ships nothing more
        assert distribution.staff("POST", f"/api/v1/admin/releases/{release_id}/publish").status_code == 200
    [shipment] = distribution.staff("GET", "/api/v1/admin/shipments").get_json()["items"]
    assert shipment["customer_number"] == "100001" and shipment["delivery_address"] == address
    csv = distribution.staff("GET", "/api/v1/admin/shipments.csv").get_data(as_text=True)
    assert "Skladová 3" in csv and "Účetnictví Novák" in csv
    assert distribution.staff("POST", f"/api/v1/admin/shipments/{shipment['id']}/sent").get_json()["status"] == "sent"
    assert distribution.staff("GET", "/api/v1/admin/shipments").get_json()["items"] == []
    news = distribution.staff("GET", "/api/v1/news").get_json()["items"]
    assert any("2026.1" in item["title"] for item in news)


def test_a_dvd_goes_to_the_billing_address_without_a_delivery_one_and_follows_changes(distribution):
    """The portal says goods go to the billing address until a delivery address is set; and a
    DVD not posted yet goes wherever the customer's address is now (rule 6)."""
    billing = {"street": "Účetní 1", "city": "Praha", "postal_code": "11000", "country": "CZ"}
    corrected = {"street": "Účetní 2", "city": "Praha", "postal_code": "11000", "country": "CZ"}
    moved = {"street": "Nová 5", "city": "Plzeň", "postal_code": "30100", "country": "CZ"}
    delivery = {"street": "Skladová 3", "city": "Brno", "postal_code": "60200", "country": "CZ"}
    customer = {"customer_number": "100001", "company_id": "25083325", "company_name": "Účetnictví Novák s.r.o."}
    distribution.event("licensing.customer.created", customer | {"billing_address": billing}, "licensing")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCC1")

    def contacts(version: int, **addresses) -> None:
        data = customer | {"delivery_method": "dvd", "version": version, **addresses}
        del data["company_id"]
        distribution.event("identity.customer.contact_changed", data, "identity")

    def shipped_to() -> dict:
        [shipment] = distribution.staff("GET", "/api/v1/admin/shipments").get_json()["items"]
        return shipment["delivery_address"]

    contacts(1, billing_address=billing)  # DVD chosen, no delivery address
    distribution.release(kind="full")
    assert shipped_to() == billing
    # staff correct the billing address in the sales master: the customer never edited it here
    distribution.event("licensing.customer.updated", customer | {"billing_address": corrected}, "licensing")
    assert shipped_to() == billing  # identity's contacts (version 1) are newer than the master's
    contacts(2, billing_address=moved)
    assert shipped_to() == moved
    contacts(3, billing_address=moved, delivery_address=delivery)
    assert shipped_to() == delivery
    [shipment] = distribution.staff("GET", "/api/v1/admin/shipments").get_json()["items"]
    distribution.staff("POST", f"/api/v1/admin/shipments/{shipment['id']}/sent")
    contacts(4, billing_address=moved)  # posted already: it went where it went
    [sent] = distribution.staff("GET", "/api/v1/admin/shipments?status=sent").get_json()["items"]
    assert sent["delivery_address"] == delivery


def test_file_names_never_become_paths(distribution):
    answer = distribution.staff(
        "POST",
        "/api/v1/admin/releases",
        {"product": "ucetnictvi", "version": "1.0", "kind": "full", "released_on": "2026-01-01"},
    )
    release_id = answer.get_json()["id"]
    for name in ("..", ".hidden", "a%2Fb"):
        response = distribution.staff("PUT", f"/api/v1/admin/releases/{release_id}/files/{name}", data=b"x")
        assert response.status_code in (404, 422), name


def test_documents_for_members_with_the_documents_right(distribution):
    distribution.customer("100001")
    distribution.member("u-1", "100001", rights=("documents",))
    distribution.member("u-2", "100001", rights=("downloads",))
    document = distribution.staff(
        "POST", "/api/v1/admin/documents", {"title": "Příručka", "description": "Návod"}
    ).get_json()
    pdf = b"%PDF-1.4 manual"
    assert (
        distribution.staff("PUT", f"/api/v1/admin/documents/{document['id']}/files/prirucka.pdf", data=pdf).status_code
        == 201
    )
    [listed] = distribution.call("GET", "/api/v1/customers/100001/documents", user="u-1").get_json()["items"]
    assert listed["title"] == "Příručka" and listed["files"][0]["name"] == "prirucka.pdf"
    assert distribution.client.get(local(listed["files"][0]["url"])).data == pdf
    assert distribution.call("GET", "/api/v1/customers/100001/documents", user="u-2").status_code == 403


def test_customer_news_need_the_news_right(distribution):
    distribution.customer("100001")
    distribution.member("u-1", "100001", rights=("news",))
    distribution.member("u-2", "100001", rights=("downloads",))
    training = {
        "kind": "training",
        "title": "Školení",
        "body": "Kurz",
        "starts_at": "2027-01-15T09:00:00+01:00",
        "city": "Olomouc",
        "capacity": 12,
    }
    assert distribution.staff("POST", "/api/v1/admin/news", training).status_code == 201
    [item] = distribution.call("GET", "/api/v1/customers/100001/news", user="u-1").get_json()["items"]
    assert item["kind"] == "training" and item["city"] == "Olomouc"
    assert distribution.call("GET", "/api/v1/customers/100001/news", user="u-2").status_code == 403
    assert distribution.call("GET", "/api/v1/customers/100009/news", user="u-1").status_code == 404
    # The same list without a profile in the path: the news right in any profile, or staff.
    assert distribution.call("GET", "/api/v1/news", user="u-1").get_json()["items"] == [item]
    refused = distribution.call("GET", "/api/v1/news", user="u-2")
    assert refused.status_code == 403 and refused.get_json()["right"] == "news"
    assert distribution.call("GET", "/api/v1/news", user="u-9").status_code == 403  # in no profile
    distribution.member("u-2", "100002", rights=("news",))  # another profile gives it
    assert distribution.call("GET", "/api/v1/news", user="u-2").status_code == 200
    assert distribution.staff("GET", "/api/v1/news").status_code == 200


def test_a_course_announced_long_ago_stays_listed_behind_newer_news_until_it_starts(distribution):
    distribution.customer("100001")
    distribution.member("u-1", "100001", rights=("news",))
    course = {
        "kind": "training",
        "title": "Roční uzávěrka",
        "body": "Kurz",
        "published_at": "2026-01-05T09:00:00+01:00",
        "starts_at": "2099-01-15T09:00:00+01:00",
        "city": "Brno",
    }
    past = course | {"title": "Loňský kurz", "starts_at": "2026-01-20T09:00:00+01:00"}
    for item in (course, past):
        assert distribution.staff("POST", "/api/v1/admin/news", item).status_code == 201
    for n in range(55):  # release news and announcements pile up after them
        news = {
            "kind": "news",
            "title": f"Novinka {n}",
            "body": "…",
            "published_at": f"2026-03-{n % 28 + 1:02d}T10:00:00+01:00",
        }
        assert distribution.staff("POST", "/api/v1/admin/news", news).status_code == 201
    listed = distribution.call("GET", "/api/v1/customers/100001/news", user="u-1").get_json()["items"]
    titles = [item["title"] for item in listed]
    assert len(listed) == 51 and titles[-1] == "Roční uzávěrka" and "Loňský kurz" not in titles
    assert [item["title"] for item in distribution.staff("GET", "/api/v1/news").get_json()["items"]] == titles


def test_downloads_are_counted_for_the_vendor(distribution):
    distribution.customer("100001")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCCC")
    distribution.member("u-1", "100001")
    distribution.release()
    url = local(downloads(distribution)[0]["files"][0]["url"])
    for _ in range(3):
        distribution.client.get(url)
    [count] = distribution.staff("GET", "/api/v1/admin/download-counts").get_json()["items"]
    assert (count["name"], count["downloads"], count["customers"]) == ("setup.exe", 3, 1)


def test_training_courses_are_held_where_the_vendor_has_training_centres(distribution):
    body = {
        "kind": "training",
        "title": "Mzdy",
        "body": "Kurz",
        "starts_at": "2027-02-01T09:00:00+01:00",
        "capacity": 10,
    }
    refused = distribution.staff("POST", "/api/v1/admin/news", {**body, "city": "Liberec"})
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "city"
    assert distribution.staff("POST", "/api/v1/admin/news", {**body, "city": "Hradec Králové"}).status_code == 201
    assert distribution.staff("POST", "/api/v1/admin/news", {**body, "city": "online"}).status_code == 201
