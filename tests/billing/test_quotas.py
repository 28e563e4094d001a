"""Quotas where they bite: a tier change is refused while the platform (or its owner) has more than
the target tier allows, with the one 409 naming the limit and the upgrade; and the per-owner
platform limit holds under concurrent sign-ups, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from nno.core import Core
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.tiers import UPGRADE_PATH
from nno.registry.models import Platform
from nno.registry.service import check_platform_quota
from nno.registry.store import new_platform_id
from tests.billing.conftest import B, P, User, assert_error, invoices, unique

ONB = "/api/v1/onboarding"


async def change_tier(client: httpx.AsyncClient, headers: dict[str, str], pid: str, tier: str) -> httpx.Response:
    return await client.post(f"{B}/subscription/change-tier", json={"tier": tier, "platformId": pid}, headers=headers)


async def unchanged(client: httpx.AsyncClient, headers: dict[str, str], pid: str, tier: str) -> None:
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=headers)).json()
    assert sub["tier"] == tier
    assert (await client.get(f"{P}/{pid}", headers=headers)).json()["tier"] == tier
    assert [i["reason"] for i in await invoices(client, headers, pid)] == ["subscription_create"]


async def test_downgrade_refused_while_the_platform_has_more_features(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed(tier="growth"))["platformId"]
    for i in range(6):  # growth: unlimited; starter: 5
        r = await client.post(f"{P}/{pid}/features", json={"featureId": f"feature-{i}", "version": "1.0.0"},
                              headers=service_headers)
        assert r.status_code == 201, r.text
    err = assert_error(await change_tier(client, service_headers, pid, "starter"), 409, "FEATURE_LIMIT_REACHED")
    assert err["details"] == {"limit": 5, "current": 6, "tier": "starter", "resource": "features",
                              "upgradeTo": "growth", "upgradePath": UPGRADE_PATH}
    assert "6 features" in err["message"] and "remove 1" in err["message"] and UPGRADE_PATH in err["message"]
    await unchanged(client, service_headers, pid, "growth")
    # The Registry refuses the same change made directly.
    assert_error(await client.patch(f"{P}/{pid}", json={"tier": "starter"}, headers=service_headers),
                 409, "FEATURE_LIMIT_REACHED")
    # With one feature gone, the downgrade goes through.
    gone = await client.delete(f"{P}/{pid}/features/feature-5", headers=service_headers)
    assert gone.status_code == 200, gone.text
    assert (await change_tier(client, service_headers, pid, "starter")).status_code == 200


async def test_downgrade_refused_while_the_platform_has_more_tenants(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed(tier="scale"))["platformId"]
    for i in range(3):  # with the default tenant: 4 > starter's 3
        r = await client.post(f"{P}/{pid}/tenants", json={"name": f"T{i}", "slug": f"t-{i}"}, headers=service_headers)
        assert r.status_code == 201, r.text
    err = assert_error(await change_tier(client, service_headers, pid, "starter"), 409, "TENANT_LIMIT_REACHED")
    assert err["details"] == {"limit": 3, "current": 4, "tier": "starter", "resource": "tenants",
                              "upgradeTo": "growth", "upgradePath": UPGRADE_PATH}
    await unchanged(client, service_headers, pid, "scale")
    assert (await change_tier(client, service_headers, pid, "growth")).status_code == 200


async def test_downgrade_refused_while_the_owner_has_more_platforms(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    first = (await subscribed(owner, tier="growth"))["platformId"]
    second = (await subscribed(owner, tier="growth"))["platformId"]
    err = assert_error(await change_tier(client, owner.headers, first, "starter"), 409, "PLATFORM_LIMIT_REACHED")
    assert err["details"] == {"limit": 1, "current": 2, "tier": "starter", "resource": "platforms",
                              "upgradeTo": "growth", "upgradePath": UPGRADE_PATH}
    await unchanged(client, service_headers, first, "growth")
    # Once the other platform is gone, one platform fits starter.
    for action in ("cancel", "period_end"):
        r = await client.post(f"{P}/{second}/lifecycle", json={"action": action}, headers=service_headers)
        assert r.status_code == 200, r.text
    assert (await change_tier(client, owner.headers, first, "starter")).status_code == 200


async def test_the_platform_limit_holds_under_concurrent_sign_ups(
        client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]]) -> None:
    async def onboard(user: User, tier: str) -> httpx.Response:
        return await client.post(ONB, json={"platformName": "Race", "slug": unique("race"), "tier": tier},
                                 headers=user.headers)

    for tier, cap, attempts in (("starter", 1, 4), ("growth", 3, 6)):
        user = await make_user(f"racer-{tier}")
        results = await asyncio.gather(*(onboard(user, tier) for _ in range(attempts)))
        made = [r for r in results if r.status_code == 201]
        refused = [r for r in results if r.status_code != 201]
        assert len(made) == cap, [r.text for r in results]
        for r in refused:
            assert_error(r, 409, "PLATFORM_LIMIT_REACHED")
        listed = (await client.get(P, headers=user.headers)).json()["data"]
        assert len(listed) == cap  # nothing half-written by the refused ones


async def test_an_owners_platform_count_waits_for_the_other_sign_up(core: Core) -> None:
    """Step by step on the backend's own locking: two transactions each add a platform for one owner;
    the second one's count waits until the first commits, then sees both and refuses."""
    db = core.context("registry").db
    owner = unique("owner")

    def platform() -> Platform:
        return Platform(id=new_platform_id(), name="X", slug=unique("x"), status="pending", tier="starter",
                        owner_user_id=owner, created_at=now_ms(), updated_at=now_ms())

    first_done = asyncio.Event()

    async def first() -> None:
        async with db.session() as s:
            s.add(platform())
            await s.flush()
            await check_platform_quota(s, owner, "starter")  # 1 of 1: allowed
            first_done.set()
            await asyncio.sleep(0.2)  # the second transaction is now at its count, waiting or not
        # committed here

    async def second() -> None:
        await first_done.wait()
        async with db.session() as s:
            s.add(platform())
            await s.flush()
            await check_platform_quota(s, owner, "starter")

    results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], NNOError) and results[1].code == "PLATFORM_LIMIT_REACHED", results[1]
