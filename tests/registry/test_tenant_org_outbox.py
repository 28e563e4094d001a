"""The operator view of a platform's tenant-organization outbox, through the gateway on both backends:
who may list and retry its rows, and what a retry changes. Delivery itself (a retry that reaches the
auth Worker) is tested with the local cloud in `tests/console/test_tenant_orgs.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from tests.registry.conftest import IAM, PASSWORD, P, User, assert_error, audit_actions, unique

from nno.core import Core
from nno.registry.tenant_orgs import FAILED, TenantOrgDispatcher, TenantOrgOutbox


@pytest.fixture(autouse=True)
async def no_dispatch(core: Core) -> None:
    """The rows stay as each test sets them: no background delivery attempt races the test's edits."""
    await TenantOrgDispatcher.of(core.context("registry")).stop()


async def _member(client: httpx.AsyncClient, service_headers: dict[str, str], user: User, pid: str,
                  role: str) -> None:
    resp = await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers,
                             json={"platformId": pid, "userId": user.id, "role": role})
    assert resp.status_code in (200, 201), resp.text


async def _operator(client: httpx.AsyncClient, service_headers: dict[str, str]) -> dict[str, str]:
    resp = await client.post(f"{IAM}/api/nno/bootstrap", headers=service_headers,
                             json={"email": f"{unique('root')}@nno.localhost", "password": PASSWORD, "name": "Root"})
    assert resp.status_code == 201, resp.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {resp.json()['token']}"}


async def _fail_for_good(core: Core, tenant_id: str, error: str = "409 NOT_A_TENANT_ORG: taken") -> None:
    """What the dispatcher does on a refusal that cannot pass (tested with a real Worker elsewhere)."""
    async with core.context("registry").db.session() as s:
        await s.execute(update(TenantOrgOutbox).where(TenantOrgOutbox.tenant_id == tenant_id)
                        .values(status=FAILED, attempts=3, last_error=error))


async def _tenant(client: httpx.AsyncClient, service_headers: dict[str, str], pid: str, name: str) -> str:
    made = await client.post(f"{P}/{pid}/tenants", json={"name": name, "slug": unique("t")}, headers=service_headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_admins_and_operators_list_and_retry_failed_rows(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]], create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner, admin = await make_user("owner"), await make_user("admin")
    pid = (await create_platform(ownerUserId=owner.id))["id"]
    await _member(client, service_headers, admin, pid, "platform-admin")
    operator = await _operator(client, service_headers)
    # No auth Worker here: a tenant's row stays pending, in back-off.
    tenant = await _tenant(client, service_headers, pid, "Green team")
    failing = await _tenant(client, service_headers, pid, "Red team")
    await _fail_for_good(core, failing)

    for headers in (owner.headers, admin.headers, operator, service_headers):
        listed = await client.get(f"{P}/{pid}/tenant-orgs", headers=headers)
        assert listed.status_code == 200, listed.text
        rows = {r["tenantId"]: r for r in listed.json()["data"]}
        assert rows[failing]["status"] == "failed" and rows[failing]["attempts"] == 3
        assert rows[failing]["lastError"] == "409 NOT_A_TENANT_ORG: taken"
        assert rows[failing]["nextAttemptAt"] is None and rows[failing]["tenantName"] == "Red team"
        assert rows[tenant]["status"] == "pending" and rows[tenant]["nextAttemptAt"] is not None
    only_failed = (await client.get(f"{P}/{pid}/tenant-orgs", params={"status": "failed"},
                                    headers=admin.headers)).json()["data"]
    assert [r["tenantId"] for r in only_failed] == [failing]
    assert_error(await client.get(f"{P}/{pid}/tenant-orgs", params={"status": "done"}, headers=admin.headers),
                 400, "VALIDATION_ERROR")

    row = only_failed[0]["id"]
    retried = await client.post(f"{P}/{pid}/tenant-orgs/{row}/retry", headers=admin.headers)
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert body["status"] == "pending" and body["attempts"] == 0 and body["nextAttemptAt"] is not None
    assert "tenant_org.retry" in await audit_actions(client, service_headers, pid)
    # Only a row that failed for good is retried; a pending one is already being tried.
    assert_error(await client.post(f"{P}/{pid}/tenant-orgs/{row}/retry", headers=operator), 409,
                 "TENANT_ORG_NOT_RETRYABLE")
    assert_error(await client.post(f"{P}/{pid}/tenant-orgs/nosuchrow0/retry", headers=operator), 404, "NOT_FOUND")


async def test_the_lowest_roles_and_other_platforms_cannot_see_or_retry(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]], create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner, member, other_admin = await make_user("owner"), await make_user("member"), await make_user("other")
    pid = (await create_platform(ownerUserId=owner.id))["id"]
    other = (await create_platform(ownerUserId=other_admin.id))["id"]
    await _member(client, service_headers, owner, pid, "platform-admin")
    await _member(client, service_headers, member, pid, "user")
    await _member(client, service_headers, other_admin, other, "platform-admin")
    failing = await _tenant(client, service_headers, pid, "Red team")
    await _fail_for_good(core, failing)
    row = (await client.get(f"{P}/{pid}/tenant-orgs", params={"status": "failed"},
                            headers=service_headers)).json()["data"][0]["id"]
    listing, retry = f"{P}/{pid}/tenant-orgs", f"{P}/{pid}/tenant-orgs/{row}/retry"

    # The admin's own API key sees the platform, but not its delivery plumbing.
    key = await client.post(f"{IAM}/api/nno/apikey", headers=owner.headers,
                            json={"name": unique("key"), "platformId": pid, "permissions": []})
    assert key.status_code == 201, key.text
    key_headers = {"x-api-key": key.json()["key"]}
    assert_error(await client.get(listing, headers=key_headers), 403, "FORBIDDEN")
    assert_error(await client.post(retry, headers=key_headers), 403, "FORBIDDEN")
    # A plain member, like anyone not administering the platform, does not see it at all.
    for headers in (member.headers, other_admin.headers):
        assert_error(await client.get(listing, headers=headers), 404, "NOT_FOUND")
        assert_error(await client.post(retry, headers=headers), 404, "NOT_FOUND")
    # Nor does the other platform's admin reach this platform's row through their own platform.
    assert_error(await client.post(f"{P}/{other}/tenant-orgs/{row}/retry", headers=other_admin.headers), 404,
                 "NOT_FOUND")
    assert_error(await client.get(listing), 401)
    # Nothing changed.
    still = (await client.get(listing, headers=service_headers)).json()["data"]
    assert [(r["status"], r["attempts"]) for r in still] == [("failed", 3)]
    assert "tenant_org.retry" not in await audit_actions(client, service_headers, pid)
