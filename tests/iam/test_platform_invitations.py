"""Invitations to a platform (`/api/nno/platform-invitations`), through the gateway on both backends:
a platform-admin (or an operator) invites an address, the holder of that proven address accepts with
the mailed token and becomes a member once; nobody else (another platform's admin, a plain member, an
account that merely signed up with the address) can see, create, cancel or accept."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from nno.core import Core
from tests.iam.conftest import IAM, Account, assert_error, iam_db, magic_sign_in, rows, sign_up

INV = f"{IAM}/api/nno/platform-invitations"
PID, OTHER_PID = "plat000001", "plat000002"


async def make_member(client: httpx.AsyncClient, service_headers: dict[str, str], who: Account, pid: str,
                      role: str) -> None:
    resp = await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers,
                             json={"platformId": pid, "userId": who.id, "role": role})
    assert resp.status_code in (200, 201), resp.text


async def invite(client: httpx.AsyncClient, by: Account, email: str, role: str = "user",
                 pid: str = PID) -> httpx.Response:
    return await client.post(INV, headers=by.headers, json={"platformId": pid, "email": email, "role": role})


async def mailed_token(core: Core, email: str) -> str:
    async with iam_db(core).session() as s:
        body = (await s.execute(text(
            "SELECT body FROM mail_outbox WHERE to_address = :t AND kind = 'platform_invitation' "
            "ORDER BY created_at DESC, id LIMIT 1"), {"t": email})).scalar_one()
    match = re.search(r"/invitations/accept\?token=(\S+)", body)
    assert match, body
    return match.group(1)


async def members(core: Core, pid: str = PID) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in await rows(
        core, "SELECT user_id, role FROM platform_members WHERE platform_id = :p ORDER BY user_id", p=pid)]


async def invitation_rows(core: Core) -> list[Any]:
    return await rows(core, "SELECT id, status FROM platform_invitations ORDER BY id")


@pytest.fixture
async def admin(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> Account:
    who = await magic_sign_in(client, iam_db(core), "owner@example.com")
    await make_member(client, service_headers, who, PID, "platform-admin")
    return who


@pytest.fixture
async def other_admin(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> Account:
    who = await magic_sign_in(client, iam_db(core), "rival@example.com")
    await make_member(client, service_headers, who, OTHER_PID, "platform-admin")
    return who


async def test_invite_list_accept_once(client: httpx.AsyncClient, core: Core, admin: Account) -> None:
    created = await invite(client, admin, "New@Example.com", "platform-admin")
    assert created.status_code == 201, created.text
    inv = created.json()
    assert inv["email"] == "new@example.com" and inv["status"] == "pending" and inv["role"] == "platform-admin"
    assert inv["expiresAt"] - inv["createdAt"] == 7 * 24 * 3600 * 1000
    token = await mailed_token(core, "new@example.com")
    stored = await rows(core, "SELECT token_hash FROM platform_invitations WHERE id = :i", i=inv["id"])
    assert stored and token not in stored[0][0]

    listed = await client.get(INV, headers=admin.headers, params={"platformId": PID})
    assert [i["id"] for i in listed.json()["data"]] == [inv["id"]]

    newcomer = await magic_sign_in(client, iam_db(core), "new@example.com")
    mine = await client.get(INV, headers=newcomer.headers)
    assert [i["id"] for i in mine.json()["data"]] == [inv["id"]]
    seen = await client.post(f"{INV}/lookup", headers=newcomer.headers, json={"token": token})
    assert seen.status_code == 200 and seen.json()["platformId"] == PID, seen.text

    accepted = await client.post(f"{INV}/accept", headers=newcomer.headers, json={"token": token})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["member"] == {**accepted.json()["member"], "userId": newcomer.id, "role": "platform-admin"}
    assert (newcomer.id, "platform-admin") in await members(core)
    # Replaying the used token is refused and changes nothing.
    assert_error(await client.post(f"{INV}/accept", headers=newcomer.headers, json={"token": token}),
                 409, "INVITATION_NOT_PENDING")
    assert len(await members(core)) == 2
    assert (await client.get(INV, headers=admin.headers, params={"platformId": PID})).json()["data"] == []
    actions = [r[0] for r in await rows(core, "SELECT action FROM audit_log WHERE action LIKE 'platform_invitation.%' "
                                               "AND outcome = 'success' ORDER BY timestamp, id")]
    assert actions == ["platform_invitation.create", "platform_invitation.accept"]


async def test_operator_invites_and_admin_cancels(client: httpx.AsyncClient, core: Core, admin: Account,
                                                  service_headers: dict[str, str]) -> None:
    resp = await client.post(INV, headers=service_headers,
                             json={"platformId": PID, "email": "x@example.com", "role": "platform-admin"})
    assert resp.status_code == 201, resp.text
    inv_id = resp.json()["id"]
    assert_error(await invite(client, admin, "x@example.com"), 409, "ALREADY_INVITED")
    gone = await client.delete(f"{INV}/{inv_id}", headers=admin.headers)
    assert gone.status_code == 200 and gone.json()["status"] == "canceled", gone.text
    assert_error(await client.delete(f"{INV}/{inv_id}", headers=admin.headers), 409, "INVITATION_NOT_PENDING")
    token = await mailed_token(core, "x@example.com")
    x = await magic_sign_in(client, iam_db(core), "x@example.com")
    assert_error(await client.post(f"{INV}/accept", headers=x.headers, json={"token": token}),
                 409, "INVITATION_NOT_PENDING")
    assert x.id not in [m[0] for m in await members(core)]


async def test_expired_invitation_is_refused(client: httpx.AsyncClient, core: Core, admin: Account) -> None:
    assert (await invite(client, admin, "late@example.com")).status_code == 201
    token = await mailed_token(core, "late@example.com")
    async with iam_db(core).session() as s:
        await s.execute(text("UPDATE platform_invitations SET expires_at = 1"))
    late = await magic_sign_in(client, iam_db(core), "late@example.com")
    assert_error(await client.post(f"{INV}/accept", headers=late.headers, json={"token": token}),
                 410, "INVITATION_EXPIRED")
    assert late.id not in [m[0] for m in await members(core)]


async def test_plain_member_cannot_invite(client: httpx.AsyncClient, core: Core, admin: Account,
                                          service_headers: dict[str, str]) -> None:
    plain = await magic_sign_in(client, iam_db(core), "plain@example.com")
    await make_member(client, service_headers, plain, PID, "user")
    for role in ("user", "platform-admin"):
        assert_error(await invite(client, plain, "friend@example.com", role), 403, "FORBIDDEN")
    assert_error(await client.get(INV, headers=plain.headers, params={"platformId": PID}), 403, "FORBIDDEN")
    assert await invitation_rows(core) == []


async def test_role_escalation_refused(client: httpx.AsyncClient, core: Core, admin: Account,
                                       service_headers: dict[str, str]) -> None:
    """An admin of one platform who is a plain member of another cannot hand out admin there, and no
    role beyond the platform's two exists."""
    await make_member(client, service_headers, admin, OTHER_PID, "user")
    assert_error(await invite(client, admin, "friend@example.com", "platform-admin", OTHER_PID), 403)
    for role in ("nno-operator", "owner", "service", "admin"):
        assert_error(await invite(client, admin, "friend@example.com", role), 400)
    assert await invitation_rows(core) == []


async def test_another_platforms_admin_is_refused(client: httpx.AsyncClient, core: Core, admin: Account,
                                                  other_admin: Account) -> None:
    inv = (await invite(client, admin, "new@example.com")).json()
    assert_error(await invite(client, other_admin, "spy@example.com"), 403, "FORBIDDEN")
    assert_error(await client.get(INV, headers=other_admin.headers, params={"platformId": PID}), 403, "FORBIDDEN")
    assert_error(await client.delete(f"{INV}/{inv['id']}", headers=other_admin.headers), 404, "INVITATION_NOT_FOUND")
    # The other admin's own token for their platform does not reach this one's invitation.
    token = await mailed_token(core, "new@example.com")
    assert_error(await client.post(f"{INV}/accept", headers=other_admin.headers, json={"token": token}),
                 404, "INVITATION_NOT_FOUND")
    assert [r[1] for r in await invitation_rows(core)] == ["pending"]
    assert_error(await client.get(INV, params={"platformId": PID}), 401)


async def test_unproven_address_cannot_accept(client: httpx.AsyncClient, core: Core, admin: Account) -> None:
    """Whoever signs up first with the invited address, without proving it, gets nothing from it."""
    assert (await invite(client, admin, "victim@example.com", "platform-admin")).status_code == 201
    token = await mailed_token(core, "victim@example.com")
    squatter = await sign_up(client, "victim@example.com")
    for url in (f"{INV}/accept", f"{INV}/lookup"):
        assert_error(await client.post(url, headers=squatter.headers, json={"token": token}), 403, "EMAIL_NOT_VERIFIED")
    assert_error(await client.get(INV, headers=squatter.headers), 403, "EMAIL_NOT_VERIFIED")
    assert squatter.id not in [m[0] for m in await members(core)]
    assert [r[1] for r in await invitation_rows(core)] == ["pending"]
    # The holder proves the address (the squatter's session is revoked) and accepts.
    holder = await magic_sign_in(client, iam_db(core), "victim@example.com")
    assert_error(await client.post(f"{INV}/accept", headers=squatter.headers, json={"token": token}), 401)
    assert (await client.post(f"{INV}/accept", headers=holder.headers, json={"token": token})).status_code == 200
    failures = await rows(core, "SELECT count(*) FROM audit_log WHERE action = 'platform_invitation.accept' "
                                "AND outcome = 'failure'")
    assert failures[0][0] >= 2


async def test_existing_member_is_not_invited(client: httpx.AsyncClient, core: Core, admin: Account) -> None:
    assert_error(await invite(client, admin, "owner@example.com"), 409, "ALREADY_A_MEMBER")


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=st.one_of(st.text(max_size=40), st.just(""), st.just("a" * 330 + "@example.com"),
                       st.sampled_from(["no-at", "@example.com", "a@", "a@@b.c", "a b@example.com"])),
       role=st.one_of(st.text(max_size=20), st.sampled_from(["user", "platform-admin"])),
       pid=st.one_of(st.just(PID), st.text(max_size=70)))
async def test_bad_input_is_a_4xx_that_changes_nothing(client: httpx.AsyncClient, core: Core, admin: Account,
                                                       email: str, role: str, pid: str) -> None:
    resp = await client.post(INV, headers=admin.headers, json={"platformId": pid, "email": email, "role": role})
    if resp.status_code == 201:
        # Hypothesis found a valid address for a valid role on this platform: undo, so nothing piles up.
        async with iam_db(core).session() as s:
            await s.execute(text("DELETE FROM platform_invitations"))
        return
    assert 400 <= resp.status_code < 500 and "error" in resp.json(), resp.text
    assert await invitation_rows(core) == []


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(st.text(max_size=600), st.just("")), inv_id=st.text(min_size=1, max_size=80))
async def test_bad_tokens_and_ids_are_4xx(client: httpx.AsyncClient, core: Core, admin: Account,
                                          token: str, inv_id: str) -> None:
    accepted = await client.post(f"{INV}/accept", headers=admin.headers, json={"token": token})
    assert 400 <= accepted.status_code < 500 and "error" in accepted.json(), accepted.text
    cancelled = await client.delete(f"{INV}/{quote(inv_id, safe='')}", headers=admin.headers)
    assert 400 <= cancelled.status_code < 500, cancelled.text
    assert len(await members(core)) == 1
