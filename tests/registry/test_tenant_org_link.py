"""A tenant's `orgId` (its organization in the platform's own auth database) is set by NNO only: a
platform's owner cannot point a tenant at another customer's organization. Through the gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from tests.registry.conftest import IAM, P, User, assert_error, unique


async def test_a_platform_owner_cannot_link_a_tenant_to_an_organization(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    other = await make_user("other")
    # Another customer's organization.
    theirs = await client.post(f"{IAM}/api/auth/organization/create", headers=other.headers,
                               json={"name": "Theirs", "slug": unique("theirs")})
    assert theirs.status_code == 201, theirs.text
    org_id = theirs.json()["id"]
    pid = (await create_platform(ownerUserId=owner.id, tier="growth"))["id"]
    h = owner.headers
    before = (await client.get(f"{P}/{pid}/tenants", headers=h)).json()["data"]

    assert_error(await client.post(f"{P}/{pid}/tenants", headers=h,
                                   json={"name": "T", "slug": "t", "orgId": org_id}), 403, "ORG_ID_RESERVED")
    assert (await client.get(f"{P}/{pid}/tenants", headers=h)).json()["data"] == before
    mine = (await client.post(f"{P}/{pid}/tenants", headers=h, json={"name": "Mine", "slug": "mine"})).json()
    for attempt in (
            client.patch(f"{P}/{pid}/tenants/{mine['id']}", headers=h, json={"orgId": org_id}),
            client.patch(f"{P}/{pid}/tenants/{mine['id']}", headers=h, json={"name": "Renamed", "orgId": None}),
            client.post(f"{P}/{pid}/tenants/{mine['id']}/sub-tenants", headers=h,
                        json={"name": "Sub", "slug": "sub", "orgId": org_id})):
        assert_error(await attempt, 403, "ORG_ID_RESERVED")
    unchanged = (await client.get(f"{P}/{pid}/tenants/{mine['id']}", headers=h)).json()
    assert unchanged == mine
    assert (await client.get(f"{P}/{pid}/tenants/{mine['id']}/sub-tenants", headers=h)).json()["data"] == []

    # Without orgId the owner works as before; NNO (the service key) links the organization.
    assert (await client.patch(f"{P}/{pid}/tenants/{mine['id']}", headers=h, json={"name": "Renamed"})
            ).status_code == 200
    linked = await client.patch(f"{P}/{pid}/tenants/{mine['id']}", headers=service_headers,
                                json={"orgId": "orgofplatf"})
    assert linked.status_code == 200 and linked.json()["orgId"] == "orgofplatf"
    made = await client.post(f"{P}/{pid}/tenants", headers=service_headers,
                             json={"name": "Linked", "slug": "linked", "orgId": "orgofplat2"})
    assert made.status_code == 201 and made.json()["orgId"] == "orgofplat2"
