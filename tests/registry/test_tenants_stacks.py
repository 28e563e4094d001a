"""Tenants, sub-tenants (with the tier's limits, under concurrency) and stacks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from tests.registry.conftest import P, User, assert_error, audit_actions, unique


async def test_tenants_and_sub_tenants(client: httpx.AsyncClient, service_headers: dict[str, str],
                                       make_user: Callable[..., Awaitable[User]],
                                       create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    pid = (await create_platform(ownerUserId=owner.id, tier="growth"))["id"]
    h = owner.headers
    resp = await client.post(f"{P}/{pid}/tenants", json={"name": "Sales", "slug": "sales"}, headers=h)
    assert resp.status_code == 201, resp.text
    sales = resp.json()
    assert sales["type"] == "tenant" and sales["parentId"] is None and sales["status"] == "active"
    sub = await client.post(f"{P}/{pid}/tenants/{sales['id']}/sub-tenants", json={"name": "EMEA", "slug": "emea"},
                            headers=h)
    assert sub.status_code == 201, sub.text
    emea = sub.json()
    assert emea["type"] == "sub_tenant" and emea["parentId"] == sales["id"]

    top = (await client.get(f"{P}/{pid}/tenants", headers=h)).json()
    assert [t["slug"] for t in top["data"]] == ["default", "sales"] and top["pagination"]["total"] == 2
    subs = (await client.get(f"{P}/{pid}/tenants/{sales['id']}/sub-tenants", headers=h)).json()
    assert [t["id"] for t in subs["data"]] == [emea["id"]]
    assert (await client.get(f"{P}/{pid}/tenants/{emea['id']}", headers=h)).json() == emea

    # Bad input, each refused with nothing written.
    assert_error(await client.post(f"{P}/{pid}/tenants", json={"name": "Dup", "slug": "sales"}, headers=h),
                 409, "SLUG_TAKEN")
    assert_error(await client.post(f"{P}/{pid}/tenants/{emea['id']}/sub-tenants",
                                   json={"name": "Deep", "slug": "deep"}, headers=h), 400, "NESTING_TOO_DEEP")
    assert_error(await client.post(f"{P}/{pid}/tenants/nosuchtent/sub-tenants",
                                   json={"name": "X", "slug": "x"}, headers=h), 404, "NOT_FOUND")
    for body in ({"name": "X"}, {"name": "X", "slug": "UP"}, {"name": "X", "slug": "x", "parentId": "a"}):
        assert_error(await client.post(f"{P}/{pid}/tenants", json=body, headers=h), 400, "VALIDATION_ERROR")
    assert_error(await client.patch(f"{P}/{pid}/tenants/{sales['id']}", json={"status": "deleted"}, headers=h),
                 400, "VALIDATION_ERROR")

    renamed = await client.patch(f"{P}/{pid}/tenants/{sales['id']}", json={"name": "Sales EU", "status": "suspended"},
                                 headers=h)
    assert renamed.json()["name"] == "Sales EU" and renamed.json()["status"] == "suspended"

    # Deleting a tenant takes its sub-tenants with it; a tenant that owns stacks stays.
    stack = await client.post(f"{P}/{pid}/stacks", json={"tenantId": sales["id"], "name": "crm"}, headers=h)
    assert stack.status_code == 201, stack.text
    err = assert_error(await client.delete(f"{P}/{pid}/tenants/{sales['id']}", headers=h), 409, "TENANT_HAS_STACKS")
    assert err["details"]["stacks"] == [stack.json()["id"]]
    await client.patch(f"{P}/{pid}/stacks/{stack.json()['id']}", json={"status": "deactivated"},
                       headers=service_headers)
    gone = await client.delete(f"{P}/{pid}/tenants/{sales['id']}", headers=h)
    assert gone.status_code == 200 and gone.json()["status"] == "deleted"
    assert_error(await client.get(f"{P}/{pid}/tenants/{emea['id']}", headers=h), 404)
    assert [t["slug"] for t in (await client.get(f"{P}/{pid}/tenants", headers=h)).json()["data"]] == ["default"]
    actions = await audit_actions(client, service_headers, pid)
    assert actions.count("entity.create") == 3 and actions.count("entity.delete") == 2
    assert actions.count("entity.update") == 1


async def test_tier_tenant_limit_holds_under_concurrency(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await create_platform(tier="starter"))["id"]  # starter: 3 tenants, the default one included
    responses = await asyncio.gather(*[
        client.post(f"{P}/{pid}/tenants", json={"name": f"T{i}", "slug": f"t{i}"}, headers=service_headers)
        for i in range(5)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 201, 409, 409, 409], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    err = assert_error(refused, 409, "TENANT_LIMIT_REACHED")
    assert err["details"] == {"limit": 3, "current": 3, "tier": "starter", "resource": "tenants",
                              "upgradeTo": "growth", "upgradePath": "POST /api/v1/billing/subscription/change-tier"}
    assert (await client.get(f"{P}/{pid}/tenants", headers=service_headers)).json()["pagination"]["total"] == 3

    # A downgrade that the tenants would not fit is refused; an upgrade lifts the limit.
    growth = await create_platform(tier="growth")
    for i in range(3):
        await client.post(f"{P}/{growth['id']}/tenants", json={"name": "T", "slug": f"g{i}"}, headers=service_headers)
    assert_error(await client.patch(f"{P}/{growth['id']}", json={"tier": "starter"}, headers=service_headers),
                 409, "TENANT_LIMIT_REACHED")
    assert (await client.patch(f"{P}/{pid}", json={"tier": "scale"}, headers=service_headers)).json()["tier"] == "scale"
    more = await client.post(f"{P}/{pid}/tenants", json={"name": "T", "slug": "after"}, headers=service_headers)
    assert more.status_code == 201


async def test_stacks(client: httpx.AsyncClient, service_headers: dict[str, str],
                      make_user: Callable[..., Awaitable[User]],
                      create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("stacker")
    pid = (await create_platform(ownerUserId=owner.id))["id"]
    h = owner.headers
    tenant = (await client.get(f"{P}/{pid}/tenants", headers=h)).json()["data"][0]
    resp = await client.post(f"{P}/{pid}/stacks", json={"tenantId": tenant["id"], "name": "analytics",
                                                         "templateId": "analytics-pro"}, headers=h)
    assert resp.status_code == 201, resp.text
    stack = resp.json()
    assert set(stack) == {"id", "tenantId", "platformId", "name", "isDefault", "templateId", "templateVersion",
                          "repoName", "status", "createdAt", "updatedAt"}
    assert stack["templateVersion"] is None
    assert len(stack["id"]) == 10 and stack["status"] == "pending" and stack["isDefault"] is False
    listing = (await client.get(f"{P}/{pid}/stacks", headers=h)).json()
    assert [s["id"] for s in listing["data"]] == ["default", stack["id"]]

    for body, status, code in (
        ({"tenantId": tenant["id"], "name": "default"}, 400, "RESERVED_NAME"),
        ({"tenantId": tenant["id"], "name": "Default"}, 400, "RESERVED_NAME"),
        ({"tenantId": tenant["id"], "name": "x", "isDefault": True}, 409, "DEFAULT_STACK_EXISTS"),
        ({"tenantId": "nosuchtent", "name": "x"}, 404, "NOT_FOUND"),
        ({"tenantId": "bad", "name": "x"}, 400, "VALIDATION_ERROR"),
        ({"name": "x"}, 400, "VALIDATION_ERROR"),
    ):
        assert_error(await client.post(f"{P}/{pid}/stacks", json=body, headers=h), status, code)
    # Another platform's tenant is as unknown here as a made-up one.
    foreign = (await create_platform())["id"]
    foreign_tenant = (await client.get(f"{P}/{foreign}/tenants", headers=service_headers)).json()["data"][0]
    assert_error(await client.post(f"{P}/{pid}/stacks", json={"tenantId": foreign_tenant["id"], "name": "x"},
                                   headers=service_headers), 404, "NOT_FOUND")
    assert_error(await client.get(f"{P}/{pid}/tenants/{foreign_tenant['id']}", headers=service_headers), 404)
    assert_error(await client.get(f"{P}/{foreign}/stacks", headers=h), 404)
    assert (await client.get(f"{P}/{pid}/stacks", headers=h)).json()["pagination"]["total"] == 2

    renamed = await client.patch(f"{P}/{pid}/stacks/{stack['id']}", json={"name": "insights"}, headers=h)
    assert renamed.json()["name"] == "insights"
    assert_error(await client.patch(f"{P}/{pid}/stacks/default", json={"name": "main"}, headers=h), 400,
                 "RESERVED_NAME")
    assert_error(await client.patch(f"{P}/{pid}/stacks/{stack['id']}", json={"status": "active"}, headers=h),
                 403, "FORBIDDEN")
    # The version a stack runs is Provisioning's to record, like its status.
    assert_error(await client.patch(f"{P}/{pid}/stacks/{stack['id']}", json={"templateVersion": "2.0.0"}, headers=h),
                 403, "FORBIDDEN")
    pinned = await client.patch(f"{P}/{pid}/stacks/{stack['id']}", json={"templateVersion": "1.0.0"},
                                headers=service_headers)
    assert pinned.status_code == 200 and pinned.json()["templateVersion"] == "1.0.0"
    active = await client.patch(f"{P}/{pid}/stacks/{stack['id']}", json={"status": "active"},
                                headers=service_headers)
    assert active.json()["status"] == "active"
    assert_error(await client.get(f"{P}/{pid}/stacks/nosuchstak", headers=h), 404)

    # No new tenants or stacks on a platform that is gone.
    for action in ("bootstrap", "complete", "cancel", "period_end"):
        await client.post(f"{P}/{pid}/lifecycle", json={"action": action}, headers=service_headers)
    assert_error(await client.post(f"{P}/{pid}/stacks", json={"tenantId": tenant["id"], "name": "late"},
                                   headers=service_headers), 409, "PLATFORM_INACTIVE")
    assert_error(await client.post(f"{P}/{pid}/tenants", json={"name": "Late", "slug": unique("late")},
                                   headers=service_headers), 409, "PLATFORM_INACTIVE")
