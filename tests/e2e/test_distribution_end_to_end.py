"""A release reaches a customer through every service: licensing's license and identity's
membership arrive in distribution by events; the file comes through the gateway by signed link."""

from __future__ import annotations

import hashlib
import os

import requests

from tests.e2e.test_identity_end_to_end import administrator_of
from tests.support import wait_until

PRODUCT = {"code": "ucetnictvi", "name": "Účetní systém", "editions": ["Jazz"], "add_ons": []}


def test_a_published_release_is_downloadable_by_an_entitled_customer_through_the_gateway(gateway, staff, mailbox):
    number, admin = administrator_of(
        gateway, staff, mailbox, "45274649", "Pekárna U Mlýna, v.o.s.", "pekar@example.com"
    )
    requests.post(f"{gateway}/api/v1/admin/products", json=PRODUCT, headers=staff, timeout=10)
    sold = requests.post(
        f"{gateway}/api/v1/admin/licenses",
        json={"customer_number": number, "product": "ucetnictvi", "edition": "Jazz", "support_until": "2030-12-31"},
        headers=staff,
        timeout=10,
    )
    assert sold.status_code == 201, sold.text
    release = requests.post(
        f"{gateway}/api/v1/admin/releases",
        json={"product": "ucetnictvi", "version": "2026.2", "kind": "full", "released_on": "2026-11-01"},
        headers=staff,
        timeout=10,
    ).json()
    content = os.urandom(3 * 1024 * 1024)  # larger than the gateway's JSON body limit
    uploaded = requests.put(
        f"{gateway}/api/v1/admin/releases/{release['id']}/files/setup.exe",
        data=content,
        headers={**staff, "Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert requests.post(f"{gateway}/api/v1/admin/releases/{release['id']}/publish", headers=staff, timeout=10).ok

    def listed():
        answer = requests.get(f"{gateway}/api/v1/customers/{number}/downloads", headers=admin, timeout=10)
        return answer.json()["items"] if answer.status_code == 200 else None

    [item] = wait_until(listed, message="the release in the customer's downloads")
    url = item["files"][0]["url"]
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == content
    part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206 and part.content == content[100:200]
