"""API keys never outrank their makers (issue 10, item 1), through the gateway on both backends.

A key acts with its maker's role on its platform as IAM reads it at each validation (a plain member's
key can do what that member's session can, and no more; a demoted or removed maker's key loses the
rights at once), and its permissions are applied by every service (`nno.kernel.scopes`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from tests.registry.conftest import IAM, P, User, assert_error, unique

from nno.core import Core
from nno.kernel.config import Settings

KEYS = f"{IAM}/api/nno/apikey"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # No validation cache: a demotion shows at the next request (the README's TTL bounds it otherwise).
    return make_settings(auth_cache_ttl_s=0)


async def _member(client: httpx.AsyncClient, service_headers: dict[str, str], user: User, platform_id: str,
                  role: str) -> None:
    resp = await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers,
                             json={"platformId": platform_id, "userId": user.id, "role": role})
    assert resp.status_code in (200, 201), resp.text


async def _key(client: httpx.AsyncClient, maker: User | dict[str, str], platform_id: str,
               permissions: list[str] | None = None) -> dict[str, str]:
    headers: dict[str, str] = maker if isinstance(maker, dict) else maker.headers
    resp = await client.post(KEYS, headers=headers, json={"name": unique("key"), "platformId": platform_id,
                                                         "permissions": permissions or []})
    assert resp.status_code == 201, resp.text
    return {"x-api-key": resp.json()["key"]}


async def _attempts(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> list[httpx.Response]:
    """What the issue's attacker did with a plain member's key: rename, create a tenant, read the audit."""
    return [
        await client.patch(f"{P}/{pid}", json={"name": "Renamed"}, headers=headers),
        await client.post(f"{P}/{pid}/tenants", json={"name": "Evil", "slug": unique("evil")}, headers=headers),
        await client.get(f"{P}/{pid}/audit", headers=headers),
    ]


async def test_a_plain_members_key_can_do_no_more_than_the_members_session(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner, member = await make_user("owner"), await make_user("member")
    platform = await create_platform(ownerUserId=owner.id)
    pid = platform["id"]
    await _member(client, service_headers, owner, pid, "platform-admin")
    await _member(client, service_headers, member, pid, "user")
    key = await _key(client, member, pid)
    tenants_before = (await client.get(f"{P}/{pid}/tenants", headers=service_headers)).json()["data"]

    for as_session, as_key in zip(await _attempts(client, member.headers, pid),
                                  await _attempts(client, key, pid), strict=True):
        assert_error(as_session, 404, "NOT_FOUND")
        assert_error(as_key, 404, "NOT_FOUND")
    assert_error(await client.get(f"{P}/{pid}", headers=key), 404)
    assert (await client.get(P, headers=key)).json()["data"] == []
    # Nothing changed.
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json()["name"] == platform["name"]
    assert (await client.get(f"{P}/{pid}/tenants", headers=service_headers)).json()["data"] == tenants_before

    # The owner's own key (the owner is platform-admin) does all three.
    owner_key = await _key(client, owner, pid)
    renamed, tenant, audit = await _attempts(client, owner_key, pid)
    assert renamed.status_code == 200 and tenant.status_code == 201 and audit.status_code == 200


async def test_a_demoted_or_removed_makers_key_loses_those_rights(
        client: httpx.AsyncClient, core: Core, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]], create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner, admin = await make_user("owner"), await make_user("admin")
    pid = (await create_platform(ownerUserId=owner.id))["id"]
    await _member(client, service_headers, admin, pid, "platform-admin")
    key = await _key(client, admin, pid)
    assert (await client.patch(f"{P}/{pid}", json={"name": "By admin key"}, headers=key)).status_code == 200

    await _member(client, service_headers, admin, pid, "user")  # demoted
    for resp in await _attempts(client, key, pid):
        assert_error(resp, 404, "NOT_FOUND")
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json()["name"] == "By admin key"

    await _member(client, service_headers, admin, pid, "platform-admin")  # promoted again: back
    assert (await client.get(f"{P}/{pid}", headers=key)).status_code == 200
    async with core.context("iam").db.session() as s:  # removed from the platform
        await s.execute(text("DELETE FROM platform_members WHERE user_id = :u"), {"u": admin.id})
    assert_error(await client.get(f"{P}/{pid}", headers=key), 401, "UNAUTHORIZED")


async def test_a_keys_permissions_are_honoured(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    platform = await create_platform(ownerUserId=owner.id)
    pid = platform["id"]
    await _member(client, service_headers, owner, pid, "platform-admin")

    reader = await _key(client, owner, pid, ["tenants:read"])
    assert (await client.get(f"{P}/{pid}/tenants", headers=reader)).status_code == 200
    refused = [
        await client.post(f"{P}/{pid}/tenants", json={"name": "T", "slug": unique("t")}, headers=reader),
        await client.patch(f"{P}/{pid}", json={"name": "Nope"}, headers=reader),
        await client.get(f"{P}/{pid}/audit", headers=reader),
        await client.get(f"{P}/{pid}", headers=reader),
        await client.get(P, headers=reader),
    ]
    for resp in refused:
        err = assert_error(resp, 403, "INSUFFICIENT_SCOPE")
        assert err["details"]["granted"] == ["tenants:read"]
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json()["name"] == platform["name"]

    # `write` implies `read`; `{area}:*` and `*` grant the whole area / everything.
    writer = await _key(client, owner, pid, ["platform:write"])
    assert (await client.patch(f"{P}/{pid}", json={"name": "Written"}, headers=writer)).status_code == 200
    assert (await client.get(f"{P}/{pid}", headers=writer)).json()["name"] == "Written"
    assert_error(await client.get(f"{P}/{pid}/tenants", headers=writer), 403, "INSUFFICIENT_SCOPE")
    tenants = await _key(client, owner, pid, ["tenants:*"])
    made = await client.post(f"{P}/{pid}/tenants", json={"name": "T", "slug": unique("t")}, headers=tenants)
    assert made.status_code == 201, made.text
    everything = await _key(client, owner, pid, ["*"])
    assert (await client.get(f"{P}/{pid}/audit", headers=everything)).status_code == 200
    # Permission keys keep the documented shape.
    bad = await client.post(KEYS, headers=owner.headers, json={"name": "k", "platformId": pid,
                                                               "permissions": ["Tenants:Read"]})
    assert_error(bad, 400, "VALIDATION_ERROR")


async def test_keys_never_reach_another_platform_nor_act_as_operators(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    from tests.iam.conftest import bootstrap_operator

    owner = await make_user("owner")
    mine, theirs = await create_platform(ownerUserId=owner.id), await create_platform()
    await _member(client, service_headers, owner, mine["id"], "platform-admin")
    operator = await bootstrap_operator(client, service_headers, f"{unique('root')}@nno.localhost")
    for key in (await _key(client, owner, mine["id"]), await _key(client, service_headers, mine["id"]),
                await _key(client, {"Authorization": f"Bearer {operator.token}"}, mine["id"])):
        assert [p["id"] for p in (await client.get(P, headers=key)).json()["data"]] == [mine["id"]]
        for resp in [*await _attempts(client, key, theirs["id"]),
                     await client.get(f"{P}/{theirs['id']}", headers=key)]:
            assert_error(resp, 404, "NOT_FOUND")
        # Operator-only acts stay with operators' sessions.
        assert_error(await client.post(P, json={"name": "X", "slug": unique("x")}, headers=key), 403)
        assert_error(await client.post(f"{P}/{mine['id']}/lifecycle", json={"action": "suspend"}, headers=key),
                     403)
    assert (await client.get(f"{P}/{theirs['id']}", headers=service_headers)).json()["name"] == theirs["name"]
