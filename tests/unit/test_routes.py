"""Every path of the public contract (api.md) reaches the service that owns its data."""

import pytest
from gateway.routes import PASS_AUTHORIZATION, service_for

CONTRACT = {
    "/api/v1/registrations": "identity",
    "/api/v1/registrations/confirm": "identity",
    "/api/v1/password-resets": "identity",
    "/api/v1/password-resets/confirm": "identity",
    "/api/v1/invitations/accept": "identity",
    "/api/v1/me": "identity",
    "/api/v1/customers/100001/profile": "identity",
    "/api/v1/customers/100001/addresses": "identity",
    "/api/v1/customers/100001/delivery-method": "identity",
    "/api/v1/customers/100001/users": "identity",
    "/api/v1/customers/100001/users/abc": "identity",
    "/api/v1/customers/100001/licenses": "licensing",
    "/api/v1/customers/100001/product-registrations": "licensing",
    "/api/v1/customers/100001/downloads": "distribution",
    "/api/v1/customers/100001/download-history": "distribution",
    "/api/v1/customers/100001/documents": "distribution",
    "/api/v1/customers/100001/news": "distribution",
    "/api/v1/updates": "distribution",
    "/api/v1/forum/categories": "forum",
    "/api/v1/forum/categories/3/topics": "forum",
    "/api/v1/forum/topics/9/posts": "forum",
    "/api/v1/forum/search": "forum",
    "/api/v1/partner/sales": "licensing",
    "/api/v1/admin/products": "licensing",
    "/api/v1/admin/customers": "licensing",
    "/api/v1/admin/licenses": "licensing",
    "/api/v1/admin/partners": "licensing",
    "/api/v1/admin/releases": "distribution",
    "/api/v1/admin/releases/5/files/setup.exe": "distribution",
    "/api/v1/admin/releases/5/publish": "distribution",
    "/api/v1/admin/shipments": "distribution",
    "/api/v1/admin/shipments.csv": "distribution",
    "/api/v1/admin/news": "distribution",
    "/api/v1/admin/documents": "distribution",
    "/api/v1/admin/download-counts": "distribution",
}


@pytest.mark.parametrize("path,service", CONTRACT.items())
def test_contract_paths_route_to_their_owner(path, service):
    assert service_for(path) == service


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/customers/1/secrets", "/api/v1/admin", "/api/v1/mex"])
def test_unowned_paths_route_nowhere(path):
    assert service_for(path) is None


def test_only_partner_paths_keep_their_authorization_header():
    assert PASS_AUTHORIZATION.match("/api/v1/partner/sales")
    assert not PASS_AUTHORIZATION.match("/api/v1/admin/customers")
