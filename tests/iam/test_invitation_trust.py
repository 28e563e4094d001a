"""Invitations need a proven address, and no invitation (nor any organization route) makes an
operator: operators come from `nno admin bootstrap` and from an operator's explicit grant
(`/api/nno/operators`) of an account whose address is proven. Through the gateway, on both backends,
and on a per-platform auth app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from nno.core import Core
from nno.kernel.clock import now_ms
from nno.kernel.config import Settings
from nno.kernel.ids import new_id
from tests.iam.conftest import (
    IAM,
    Account,
    assert_error,
    bootstrap_operator,
    create_org,
    iam_db,
    magic_sign_in,
    platform_auth_client,
    platform_auth_db,
    rows,
    sign_up,
)

ORG = f"{IAM}/api/auth/organization"
OPS = f"{IAM}/api/nno/operators"
VICTIM = "victim@example.com"
PID = "inv1tetrst"


async def session_role(client: httpx.AsyncClient, who: Account) -> str:
    resp = await client.get(f"{IAM}/api/nno/session", headers=who.headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["role"])


async def invite(client: httpx.AsyncClient, by: Account, org_id: str, email: str, prefix: str = IAM
                 ) -> httpx.Response:
    return await client.post(f"{prefix}/api/auth/organization/invite-member", headers=by.headers,
                             json={"email": email, "role": "admin", "organizationId": org_id})


async def invitee_routes_refuse_an_unproven_account(client: httpx.AsyncClient, squatter: Account, inv_id: str,
                                                    prefix: str) -> None:
    org = f"{prefix}/api/auth/organization"
    for method, url, params, body in (
            ("POST", f"{org}/accept-invitation", None, {"invitationId": inv_id}),
            ("POST", f"{org}/reject-invitation", None, {"invitationId": inv_id}),
            ("GET", f"{org}/get-invitation", {"id": inv_id}, None),
            ("GET", f"{org}/list-user-invitations", None, None)):
        resp = await client.request(method, url, params=params, json=body, headers=squatter.headers)
        err = assert_error(resp, 403, "EMAIL_NOT_VERIFIED")
        assert "magic link" in err["message"]


async def test_an_unproven_account_cannot_use_an_invitation(client: httpx.AsyncClient, core: Core) -> None:
    owner = await sign_up(client, "owner@example.com")
    org = await create_org(client, owner, "team")
    squatter = await sign_up(client, VICTIM)  # a password sign-up proves nothing about the address
    inv = (await invite(client, owner, org["id"], VICTIM)).json()
    await invitee_routes_refuse_an_unproven_account(client, squatter, inv["id"], IAM)
    assert await rows(core, "SELECT id FROM members WHERE user_id = :u", u=squatter.id) == []
    assert (await rows(core, "SELECT status FROM invitations"))[0][0] == "pending"
    # The address's holder proves it (the squatter's credentials go) and then accepts.
    victim = await magic_sign_in(client, iam_db(core), VICTIM)
    assert victim.id == squatter.id
    assert_error(await client.post(f"{ORG}/accept-invitation", headers=squatter.headers,
                                   json={"invitationId": inv["id"]}), 401)
    accepted = await client.post(f"{ORG}/accept-invitation", headers=victim.headers, json={"invitationId": inv["id"]})
    assert accepted.status_code == 200 and accepted.json()["member"]["role"] == "admin"


async def test_a_platform_auth_app_wants_a_proven_address_too(tmp_path: Path, settings: Settings) -> None:
    async with platform_auth_db(settings, tmp_path, PID) as db, platform_auth_client(db, settings, PID) as c:
        owner = await sign_up(c, "owner@example.com", prefix="")
        org = (await c.post("/api/auth/organization/create", headers=owner.headers,
                            json={"name": "Team", "slug": "team"})).json()
        squatter = await sign_up(c, VICTIM, prefix="")
        inv = (await invite(c, owner, org["id"], VICTIM, prefix="")).json()
        await invitee_routes_refuse_an_unproven_account(c, squatter, inv["id"], "")
        victim = await magic_sign_in(c, db, VICTIM, prefix="")
        assert (await c.post("/api/auth/organization/accept-invitation", headers=victim.headers,
                             json={"invitationId": inv["id"]})).status_code == 200
        # A platform auth app has no operators to grant.
        for method in ("GET", "POST"):
            assert_error(await c.request(method, "/api/nno/operators", headers=owner.headers,
                                         json={"userId": victim.id}), 404)


async def test_an_invitation_to_the_operator_org_makes_no_operator(
        client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    """The attack: sign up with someone else's address, get an operator invitation for it, accept."""
    root = await bootstrap_operator(client, service_headers)
    ops_org = (await client.get(f"{IAM}/api/nno/organizations", params={"orgType": "nno-operator"},
                                headers=service_headers)).json()["data"][0]
    squatter = await sign_up(client, VICTIM)
    for who in (root.headers, service_headers):
        assert_error(await client.post(f"{ORG}/invite-member", headers=who, json={
            "email": VICTIM, "role": "member", "organizationId": ops_org["id"]}), 403, "OPERATOR_GRANT_REQUIRED")
        assert_error(await client.post(f"{ORG}/add-member", headers=who, json={
            "userId": squatter.id, "role": "member", "organizationId": ops_org["id"]}),
            403, "OPERATOR_GRANT_REQUIRED")
    # Nor through a second operator organization, made by any route.
    assert_error(await client.post(f"{ORG}/create", headers=root.headers, json={
        "name": "Ops 2", "slug": "ops-2", "orgType": "nno-operator"}), 403, "OPERATOR_GRANT_REQUIRED")
    assert_error(await client.post(f"{IAM}/api/nno/organizations", headers=service_headers, json={
        "name": "Ops 3", "slug": "ops-3", "ownerId": squatter.id, "orgType": "nno-operator"}),
        403, "OPERATOR_GRANT_REQUIRED")
    assert await session_role(client, squatter) == "user"
    assert_error(await client.get(f"{IAM}/api/nno/mail/outbox", headers=squatter.headers), 403)
    # An invitation to the operator org that predates this rule is not honoured either, even by the
    # address's proven holder.
    inv_id = new_id()
    async with iam_db(core).session() as s:
        await s.execute(text("INSERT INTO invitations (id, organization_id, email, role, status, expires_at, "
                             "inviter_id, created_at) VALUES (:i, :o, :e, 'member', 'pending', :x, :r, :n)"),
                        {"i": inv_id, "o": ops_org["id"], "e": VICTIM, "x": now_ms() + 3_600_000, "r": root.id,
                         "n": now_ms()})
    victim = await magic_sign_in(client, iam_db(core), VICTIM)
    assert_error(await client.post(f"{ORG}/accept-invitation", headers=victim.headers,
                                   json={"invitationId": inv_id}), 403, "OPERATOR_GRANT_REQUIRED")
    assert await session_role(client, victim) == "user"


async def test_an_unproven_member_of_the_operator_org_is_no_operator(
        client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    """Memberships made before these rules (e.g. by an accepted invitation) confer nothing until the
    address is proven."""
    await bootstrap_operator(client, service_headers)
    squatter = await sign_up(client, VICTIM)
    ops = await rows(core, "SELECT id FROM organizations WHERE org_type = 'nno-operator'")
    async with iam_db(core).session() as s:
        await s.execute(text("INSERT INTO members (id, organization_id, user_id, role, created_at) "
                             "VALUES (:i, :o, :u, 'admin', :n)"),
                        {"i": new_id(), "o": ops[0][0], "u": squatter.id, "n": now_ms()})
    assert await session_role(client, squatter) == "user"
    assert_error(await client.get(f"{IAM}/api/nno/mail/outbox", headers=squatter.headers), 403)
    assert_error(await client.get(OPS, headers=squatter.headers), 403)


@pytest.fixture
async def root(client: httpx.AsyncClient, service_headers: dict[str, str]) -> AsyncIterator[Account]:
    yield await bootstrap_operator(client, service_headers)


async def test_an_operator_grants_and_revokes_operators(
        client: httpx.AsyncClient, core: Core, root: Account, service_headers: dict[str, str]) -> None:
    ada = await magic_sign_in(client, iam_db(core), "ada@example.com")
    unproven = await sign_up(client, "bob@example.com")
    # Only a proven address, and only by an operator or the service key.
    err = assert_error(await client.post(OPS, headers=root.headers, json={"email": "bob@example.com"}),
                       403, "EMAIL_NOT_VERIFIED")
    assert err["details"]["userId"] == unproven.id
    for who in (ada.headers, unproven.headers):
        assert_error(await client.post(OPS, headers=who, json={"userId": ada.id}), 403, "FORBIDDEN")
        assert_error(await client.get(OPS, headers=who), 403, "FORBIDDEN")
    assert_error(await client.post(OPS, json={"userId": ada.id}), 401)
    assert_error(await client.post(OPS, headers=root.headers, json={"userId": "nosuchuser"}), 404, "USER_NOT_FOUND")
    for body in ({}, {"userId": ada.id, "email": ada.email}, {"email": "not-an-email"}):
        assert_error(await client.post(OPS, headers=root.headers, json=body), 400, "VALIDATION_ERROR")
    assert await session_role(client, ada) == "user"

    made = await client.post(OPS, headers=root.headers, json={"email": "ADA@example.com"})
    assert made.status_code == 201 and made.json()["userId"] == ada.id
    assert (await client.post(OPS, headers=service_headers, json={"userId": ada.id})).status_code == 200
    assert await session_role(client, ada) == "nno-operator"
    assert (await client.get(f"{IAM}/api/nno/mail/outbox", headers=ada.headers)).status_code == 200
    listed = (await client.get(OPS, headers=ada.headers)).json()["data"]
    assert [o["userId"] for o in listed] == [root.id, ada.id]
    actions = [r[0] for r in await rows(core, "SELECT action FROM audit_log WHERE action LIKE 'operator.%'")]
    assert actions == ["operator.grant"]

    # Revocation: an operator's own right ends; the last operator, and the operator org's last owner, stay.
    assert_error(await client.delete(f"{OPS}/{unproven.id}", headers=root.headers), 404, "NOT_AN_OPERATOR")
    assert_error(await client.delete(f"{OPS}/{root.id}", headers=ada.headers), 409, "LAST_OWNER")
    gone = await client.delete(f"{OPS}/{ada.id}", headers=root.headers)
    assert gone.status_code == 200 and gone.json()["operator"] is False
    assert await session_role(client, ada) == "user"
    assert_error(await client.delete(f"{OPS}/{root.id}", headers=root.headers), 409, "LAST_OPERATOR")
    assert [o["userId"] for o in (await client.get(OPS, headers=root.headers)).json()["data"]] == [root.id]


async def test_an_api_key_grants_no_operator(client: httpx.AsyncClient, core: Core, root: Account,
                                             service_headers: dict[str, str]) -> None:
    ada = await magic_sign_in(client, iam_db(core), "ada@example.com")
    assert (await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers, json={
        "platformId": "plat000001", "userId": root.id, "role": "platform-admin"})).status_code == 201
    key: dict[str, Any] = (await client.post(f"{IAM}/api/nno/apikey", headers=root.headers,
                                             json={"name": "ci", "platformId": "plat000001"})).json()
    assert "key" in key, key
    resp = await client.post(OPS, headers={"x-api-key": key["key"]}, json={"userId": ada.id})
    assert resp.status_code in (401, 403), resp.text
    assert await session_role(client, ada) == "user"


async def test_no_grant_before_bootstrap(client: httpx.AsyncClient, core: Core,
                                         service_headers: dict[str, str]) -> None:
    ada = await magic_sign_in(client, iam_db(core), "ada@example.com")
    assert_error(await client.post(OPS, headers=service_headers, json={"userId": ada.id}), 409, "NOT_BOOTSTRAPPED")


