"""Roles, grants and the permission check: denial wins, expired grants are ignored, orgs are isolated."""

from __future__ import annotations

import re

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.core import Core
from nno.kernel.clock import now_ms
from tests.iam.conftest import IAM, Account, add_member, assert_error, create_org, rows, sign_up

N = f"{IAM}/api/nno"


async def _check(client: httpx.AsyncClient, who: Account, org_id: str, perm: str, user_id: str | None = None
                 ) -> dict[str, object]:
    body = {"orgId": org_id, "permission": perm}
    if user_id:
        body["userId"] = user_id
    resp = await client.post(f"{N}/permissions/check", headers=who.headers, json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_roles_grants_and_resolution(client: httpx.AsyncClient, core: Core) -> None:
    owner = await sign_up(client, "owner@example.com")
    member = await sign_up(client, "member@example.com")
    org = await create_org(client, owner, "rbac-org")
    await add_member(client, owner, org["id"], member)
    oid = org["id"]
    up = await client.post(f"{N}/roles", headers=owner.headers,
                           json={"orgId": oid, "role": "member", "permissions": ["billing:read", "analytics:*"]})
    assert up.status_code == 201
    again = await client.post(f"{N}/roles", headers=owner.headers,
                              json={"orgId": oid, "role": "member", "permissions": ["billing:read", "analytics:*"]})
    assert again.status_code == 200  # upsert
    roles = (await client.get(f"{N}/roles", params={"orgId": oid}, headers=member.headers)).json()["data"]
    assert [(r["role"], r["permissions"]) for r in roles] == [("member", ["billing:read", "analytics:*"])]

    assert (await _check(client, member, oid, "billing:read"))["allowed"] is True
    assert (await _check(client, member, oid, "analytics:write-export"))["allowed"] is True
    assert (await _check(client, member, oid, "billing:write"))["allowed"] is False

    def grant(perm: str, granted: bool, expires: int | None = None) -> dict[str, object]:
        body: dict[str, object] = {"userId": member.id, "orgId": oid, "permission": perm, "granted": granted,
                                   "grantedBy": owner.id}
        if expires is not None:
            body["expiresAt"] = expires
        return body

    g1 = await client.post(f"{N}/grants", headers=owner.headers, json=grant("billing:write", True))
    assert g1.status_code == 201 and g1.json()["grantedBy"] == owner.id
    assert (await _check(client, member, oid, "billing:write"))["allowed"] is True
    deny = await client.post(f"{N}/grants", headers=owner.headers, json=grant("billing:read", False))
    assert deny.status_code == 201
    verdict = await _check(client, member, oid, "billing:read")
    assert verdict == {**verdict, "allowed": False, "reason": "denied"}  # an explicit denial beats the role
    # A grant that has expired is ignored.
    await client.post(f"{N}/grants", headers=owner.headers, json=grant("settings:admin-manage", True, now_ms() + 50))
    import asyncio

    await asyncio.sleep(0.1)
    assert (await _check(client, member, oid, "settings:admin-manage"))["allowed"] is False
    # The session carries the resolved permissions of the active org.
    await client.post(f"{IAM}/api/auth/organization/set-active", headers=member.headers, json={"organizationId": oid})
    perms = (await client.get(f"{N}/session", headers=member.headers)).json()
    assert "billing:write" in perms["permissions"] and "billing:read" not in perms["permissions"]
    # Members see only their own grants; the owner sees all and can check for others.
    own = (await client.get(f"{N}/grants", params={"orgId": oid}, headers=member.headers)).json()["data"]
    assert {g["userId"] for g in own} == {member.id}
    assert_error(await client.get(f"{N}/grants", params={"orgId": oid, "userId": owner.id},
                                  headers=member.headers), 403)
    assert (await _check(client, owner, oid, "billing:write", member.id))["allowed"] is True
    assert_error(await client.post(f"{N}/permissions/check", headers=member.headers,
                                   json={"orgId": oid, "permission": "billing:read", "userId": owner.id}), 403)
    # Delete the denial: the role permission applies again.
    gone = await client.delete(f"{N}/grants/{deny.json()['id']}", headers=owner.headers)
    assert gone.status_code == 204
    assert (await _check(client, member, oid, "billing:read"))["allowed"] is True
    assert_error(await client.delete(f"{N}/grants/{deny.json()['id']}", headers=owner.headers), 404)
    assert (await client.delete(f"{N}/roles/{oid}/member", headers=owner.headers)).status_code == 204
    assert_error(await client.delete(f"{N}/roles/{oid}/member", headers=owner.headers), 404, "ROLE_NOT_FOUND")
    actions = {r[0] for r in await rows(core, "SELECT action FROM audit_log WHERE org_id = :o", o=oid)}
    assert {"role.upsert", "role.delete", "grant.create", "grant.delete"} <= actions


async def test_grant_validation(client: httpx.AsyncClient, core: Core) -> None:
    owner = await sign_up(client, "o@example.com")
    member = await sign_up(client, "m@example.com")
    outsider = await sign_up(client, "x@example.com")
    org = await create_org(client, owner, "gv")
    await add_member(client, owner, org["id"], member)
    base = {"userId": member.id, "orgId": org["id"], "permission": "billing:read", "granted": True,
            "grantedBy": owner.id}
    cases = [
        ({**base, "permission": "billing_read"}, 400, "VALIDATION_ERROR"),
        ({**base, "permission": "Billing:Read"}, 400, "VALIDATION_ERROR"),
        ({**base, "granted": "maybe"}, 400, "VALIDATION_ERROR"),
        ({**base, "expiresAt": 0}, 400, "VALIDATION_ERROR"),
        ({**base, "expiresAt": 1000}, 422, "INVALID_EXPIRY"),
        ({**base, "grantedBy": member.id}, 403, "FORBIDDEN"),
        ({**base, "userId": outsider.id}, 404, "MEMBER_NOT_FOUND"),
        ({**base, "orgId": "nosuchorg0"}, 404, "ORGANIZATION_NOT_FOUND"),
    ]
    for body, status, code in cases:
        assert_error(await client.post(f"{N}/grants", headers=owner.headers, json=body), status, code)
    # A member may not grant.
    assert_error(await client.post(f"{N}/grants", headers=member.headers, json={**base, "grantedBy": member.id}),
                 403)
    assert_error(await client.get(f"{N}/grants", headers=owner.headers), 400)
    assert await rows(core, "SELECT id FROM permission_grants") == []


async def test_other_org_roles_and_grants_are_out_of_reach(client: httpx.AsyncClient, core: Core) -> None:
    a = await sign_up(client, "a@example.com")
    b = await sign_up(client, "b@example.com")
    b_member = await sign_up(client, "bm@example.com")
    org_b = await create_org(client, b, "org-b")
    await add_member(client, b, org_b["id"], b_member)
    await client.post(f"{N}/roles", headers=b.headers, json={"orgId": org_b["id"], "role": "member",
                                                            "permissions": ["billing:read"]})
    grant = (await client.post(f"{N}/grants", headers=b.headers, json={
        "userId": b_member.id, "orgId": org_b["id"], "permission": "billing:write", "granted": True,
        "grantedBy": b.id})).json()
    before = await rows(core, "SELECT id, role, permissions FROM role_permissions")
    assert_error(await client.get(f"{N}/roles", params={"orgId": org_b["id"]}, headers=a.headers), 404)
    assert_error(await client.post(f"{N}/roles", headers=a.headers,
                                   json={"orgId": org_b["id"], "role": "member", "permissions": ["*"]}), 404)
    assert_error(await client.delete(f"{N}/roles/{org_b['id']}/member", headers=a.headers), 404)
    assert_error(await client.get(f"{N}/grants", params={"orgId": org_b["id"]}, headers=a.headers), 404)
    assert_error(await client.post(f"{N}/grants", headers=a.headers, json={
        "userId": a.id, "orgId": org_b["id"], "permission": "billing:read", "granted": True, "grantedBy": a.id}),
        404)
    assert_error(await client.delete(f"{N}/grants/{grant['id']}", headers=a.headers), 404, "GRANT_NOT_FOUND")
    assert_error(await client.post(f"{N}/permissions/check", headers=a.headers,
                                   json={"orgId": org_b["id"], "permission": "billing:read"}), 404)
    assert await rows(core, "SELECT id, role, permissions FROM role_permissions") == before
    assert len(await rows(core, "SELECT id FROM permission_grants")) == 1


PERMISSION = re.compile(r"^[a-z][a-z0-9-]*:[a-z-]+$")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,10}:[a-z-]{1,12}", fullmatch=True),
                     st.text(max_size=30)))
async def test_permission_key_rule(client: httpx.AsyncClient, service_headers: dict[str, str], key: str) -> None:
    # The org id does not exist: a valid key reaches the lookup (404), an invalid one stops at validation (400).
    resp = await client.post(f"{N}/roles", headers=service_headers,
                             json={"orgId": "nosuchorg0", "role": "member", "permissions": [key]})
    if PERMISSION.fullmatch(key) or key == "*" or re.fullmatch(r"[a-z][a-z0-9-]*:\*", key):
        assert_error(resp, 404, "ORGANIZATION_NOT_FOUND")
    else:
        assert_error(resp, 400, "VALIDATION_ERROR")


async def test_documented_keys(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    for perm in ("billing:read", "analytics:write-export", "settings:admin-manage"):
        resp = await client.post(f"{N}/permissions/check", headers=service_headers,
                                 json={"orgId": "nosuchorg0", "permission": perm, "userId": "u"})
        assert_error(resp, 404, "ORGANIZATION_NOT_FOUND")
    for perm in ("billing_read", "Billing:Read", "billing:read\n", ":read", "billing:"):
        resp = await client.post(f"{N}/permissions/check", headers=service_headers,
                                 json={"orgId": "nosuchorg0", "permission": perm, "userId": "u"})
        assert_error(resp, 400, "VALIDATION_ERROR")
