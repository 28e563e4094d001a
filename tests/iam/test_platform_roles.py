"""Platform-level roles on a per-platform auth app: NNO (a service token for that platform) or the
platform's own platform-admins make users `platform-admin`; nothing else does, and every change is
audited. The app is built directly with create_auth_app on a fresh database of the backend under test.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select, text

from nno.iam import service_tokens
from nno.iam.auth_app import create_auth_app
from nno.iam.models import AuditEvent
from nno.iam.platform_roles import platform_audience
from nno.kernel.config import Settings
from nno.kernel.db import Database
from tests.iam.conftest import IAM, Account, assert_error, platform_auth_db, sign_up

PID, OTHER_PID = "k3m9p2xw7q", "a1b2c3d4e5"
HOST = f"http://auth.{PID}.nno.localhost:8787"


@pytest.fixture
async def platform_db(tmp_path: Path, settings: Settings) -> AsyncIterator[Database]:
    """SQLite embedded; on the scaled backend a schema of its own in the test's fresh PostgreSQL database."""
    async with platform_auth_db(settings, tmp_path, PID) as db:
        yield db


@pytest.fixture
def auth_app(platform_db: Database, settings: Settings) -> FastAPI:
    return create_auth_app(platform_db, settings, platform_id=PID)


@pytest.fixture
async def auth_client(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app), base_url=HOST) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def nno_token(settings: Settings, platform_id: str = PID, *, ttl_s: int = 60, subject: str = "provisioning") -> str:
    return service_tokens.mint(settings, subject=subject, audience=platform_audience(platform_id), ttl_s=ttl_s)[0]


async def role_of(c: httpx.AsyncClient, user: Account) -> str:
    resp = await c.get("/api/nno/session", headers=user.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["platformId"] == PID
    return str(resp.json()["role"])


async def role_audit(db: Database) -> list[tuple[str, str | None, str | None, str | None, dict[str, Any]]]:
    async with db.session() as s:
        found = (await s.execute(select(AuditEvent).where(AuditEvent.action == "user.role_change")
                                 .order_by(AuditEvent.timestamp, AuditEvent.id))).scalars().all()
    return [(e.actor_type, e.actor_id, e.target_id, e.platform_id, e.data) for e in found]


async def set_role(c: httpx.AsyncClient, ref: str, role: str, headers: dict[str, str]) -> httpx.Response:
    return await c.put(f"/api/nno/users/{ref}/role", headers=headers, json={"role": role})


async def test_nno_service_token_promotes_and_demotes(auth_client: httpx.AsyncClient, settings: Settings,
                                                      platform_db: Database) -> None:
    ada = await _magic_sign_in(auth_client, platform_db, "ada@example.com")
    assert await role_of(auth_client, ada) == "user"
    token = nno_token(settings)

    up = await set_role(auth_client, ada.id, "platform-admin", bearer(token))
    assert up.status_code == 200, up.text
    assert up.json() == {"userId": ada.id, "email": "ada@example.com", "role": "platform-admin",
                         "previousRole": "user", "changed": True, "platformId": PID}
    assert await role_of(auth_client, ada) == "platform-admin"
    # Same role again: nothing changes, nothing is audited.
    again = await set_role(auth_client, ada.id, "platform-admin", bearer(token))
    assert again.status_code == 200 and again.json()["changed"] is False
    # By email (any case), back to user.
    down = await set_role(auth_client, "ADA@example.com", "user", bearer(token))
    assert down.status_code == 200 and down.json()["previousRole"] == "platform-admin"
    assert await role_of(auth_client, ada) == "user"

    events = await role_audit(platform_db)
    assert [(e[0], e[1], e[2], e[3]) for e in events] == [("service", "provisioning", ada.id, PID)] * 2
    assert [(e[4]["from"], e[4]["to"], e[4]["via"]) for e in events] == [
        ("user", "platform-admin", "service-token"), ("platform-admin", "user", "service-token")]


async def test_a_token_minted_by_the_nno_iam_works(auth_client: httpx.AsyncClient, client: httpx.AsyncClient,
                                                   service_headers: dict[str, str], platform_db: Database) -> None:
    """The real path: NNO asks its IAM (through the gateway) for a token for this platform."""
    minted = await client.post(f"{IAM}/api/nno/service-token", headers=service_headers,
                               json={"audience": f"auth:{PID}", "subject": "provisioning", "ttlSeconds": 60})
    assert minted.status_code == 200, minted.text
    bob = await _magic_sign_in(auth_client, platform_db, "bob@example.com")
    resp = await set_role(auth_client, bob.id, "platform-admin", bearer(minted.json()["token"]))
    assert resp.status_code == 200, resp.text
    assert await role_of(auth_client, bob) == "platform-admin"
    # The route exists only on per-platform apps, not on NNO's own IAM.
    assert (await client.put(f"{IAM}/api/nno/users/{bob.id}/role", headers=service_headers,
                             json={"role": "user"})).status_code == 404


async def test_credentials_that_are_refused(auth_client: httpx.AsyncClient, settings: Settings,
                                            platform_db: Database) -> None:
    carol = await sign_up(auth_client, "carol@example.com", prefix="")
    cases: list[tuple[dict[str, str], int, str]] = [
        ({}, 401, "UNAUTHORIZED"),
        # A publicly addressable app: gateway identity headers mean nothing here.
        ({"X-Nno-Auth-Type": "service", "X-Nno-Role": "service"}, 401, "UNAUTHORIZED"),
        ({"X-Nno-Auth-Type": "session", "X-Nno-User-Id": carol.id, "X-Nno-Role": "platform-admin"},
         401, "UNAUTHORIZED"),
        (bearer(settings.auth_api_key or "x"), 401, "UNAUTHORIZED"),  # NNO's static key is no credential here
        (bearer(nno_token(settings, OTHER_PID)), 403, "WRONG_AUDIENCE"),
        (bearer(service_tokens.mint(settings, subject="gw", audience="nno", ttl_s=60)[0]), 403, "WRONG_AUDIENCE"),
        (bearer(nno_token(settings, ttl_s=-5)), 401, "SERVICE_TOKEN_EXPIRED"),
        (bearer(jwt.encode({"iss": "nno-iam", "sub": "x", "aud": f"auth:{PID}", "iat": 1, "exp": 2**40,
                            "typ": "service"}, b"another-install-secret-0123456789", algorithm="HS256")),
         401, "INVALID_SERVICE_TOKEN"),
        # Right key and audience, but not a service token.
        (bearer(jwt.encode({"iss": "nno-iam", "sub": "x", "aud": f"auth:{PID}", "iat": 1, "exp": 2**40},
                           settings.signing_secret, algorithm="HS256")), 401, "INVALID_SERVICE_TOKEN"),
        (bearer("not-a-session"), 401, "UNAUTHORIZED"),
        (carol.headers, 403, "FORBIDDEN"),  # a plain user, even promoting herself
    ]
    for headers, status, code in cases:
        assert_error(await set_role(auth_client, carol.id, "platform-admin", headers), status, code)
        assert_error(await auth_client.get("/api/nno/platform-admins", headers=headers), status, code)
    tampered = nno_token(settings)
    head, payload, sig = tampered.split(".")
    assert_error(await set_role(auth_client, carol.id, "platform-admin",
                                bearer(f"{head}.{payload}.{sig[:-2]}AA")), 401, "INVALID_SERVICE_TOKEN")
    assert await role_of(auth_client, carol) == "user"
    assert await role_audit(platform_db) == []


async def test_bad_requests_change_nothing(auth_client: httpx.AsyncClient, settings: Settings,
                                           platform_db: Database) -> None:
    dan = await sign_up(auth_client, "dan@example.com", prefix="")
    headers = bearer(nno_token(settings))
    assert_error(await set_role(auth_client, dan.id, "nno-operator", headers), 400, "VALIDATION_ERROR")
    assert_error(await set_role(auth_client, dan.id, "owner", headers), 400, "VALIDATION_ERROR")
    assert_error(await auth_client.put(f"/api/nno/users/{dan.id}/role", headers=headers, json={}),
                 400, "VALIDATION_ERROR")
    assert_error(await set_role(auth_client, "nosuchuser", "platform-admin", headers), 404, "USER_NOT_FOUND")
    assert_error(await set_role(auth_client, "nobody@example.com", "platform-admin", headers), 404,
                 "USER_NOT_FOUND")
    assert await role_of(auth_client, dan) == "user"
    assert await role_audit(platform_db) == []


async def test_platform_admin_manages_roles_with_their_session(
    auth_client: httpx.AsyncClient, settings: Settings, platform_db: Database
) -> None:
    # Only proven addresses are promoted (`test_an_unproven_account_is_never_promoted`).
    admin = await _magic_sign_in(auth_client, platform_db, "owner@example.com")
    eve = await _magic_sign_in(auth_client, platform_db, "eve@example.com")
    frank = await _magic_sign_in(auth_client, platform_db, "frank@example.com")
    assert (await set_role(auth_client, admin.id, "platform-admin", bearer(nno_token(settings)))).status_code == 200

    # A plain user can neither promote nor demote anyone.
    assert_error(await set_role(auth_client, frank.id, "platform-admin", eve.headers), 403, "FORBIDDEN")
    assert_error(await set_role(auth_client, admin.id, "user", eve.headers), 403, "FORBIDDEN")

    # The admin, with their session (bearer or cookie), promotes Eve; Eve then promotes Frank.
    promoted = await set_role(auth_client, eve.id, "platform-admin", admin.headers)
    assert promoted.status_code == 200, promoted.text
    assert await role_of(auth_client, eve) == "platform-admin"
    auth_client.cookies.set("nno_session", eve.token)
    assert (await set_role(auth_client, "frank@example.com", "platform-admin", {})).status_code == 200
    auth_client.cookies.clear()
    listed = await auth_client.get("/api/nno/platform-admins", headers=eve.headers)
    assert sorted(a["email"] for a in listed.json()["data"]) == [
        "eve@example.com", "frank@example.com", "owner@example.com"]

    # Demotion takes effect at once: Frank, demoted by Eve, loses the power he just had.
    assert (await set_role(auth_client, frank.id, "user", eve.headers)).status_code == 200
    assert_error(await set_role(auth_client, eve.id, "user", frank.headers), 403, "FORBIDDEN")
    # Admins may step down, but a session cannot remove the last admin; NNO can.
    assert (await set_role(auth_client, eve.id, "user", eve.headers)).status_code == 200
    assert_error(await set_role(auth_client, admin.id, "user", admin.headers), 409, "LAST_PLATFORM_ADMIN")
    assert await role_of(auth_client, admin) == "platform-admin"
    assert (await set_role(auth_client, admin.id, "user", bearer(nno_token(settings)))).status_code == 200

    events = await role_audit(platform_db)
    assert [(e[0], e[1], e[2], e[4]["to"], e[4]["via"]) for e in events] == [
        ("service", "provisioning", admin.id, "platform-admin", "service-token"),
        ("user", admin.id, eve.id, "platform-admin", "platform-admin"),
        ("user", eve.id, frank.id, "platform-admin", "platform-admin"),
        ("user", eve.id, frank.id, "user", "platform-admin"),
        ("user", eve.id, eve.id, "user", "platform-admin"),
        ("service", "provisioning", admin.id, "user", "service-token"),
    ]


async def test_an_unproven_account_is_never_promoted(auth_client: httpx.AsyncClient, settings: Settings,
                                                     platform_db: Database) -> None:
    """Whoever signed up first with an address need not hold it: neither NNO nor a platform-admin can make
    that account an admin (by id or by address); an admin invite waits for the address's proof."""
    admin = await _magic_sign_in(auth_client, platform_db, "admin@example.com")
    assert (await set_role(auth_client, admin.id, "platform-admin", bearer(nno_token(settings)))).status_code == 200
    squatter = await sign_up(auth_client, "boss@example.com", prefix="")
    for ref in (squatter.id, "boss@example.com"):
        for headers in (bearer(nno_token(settings)), admin.headers):
            err = assert_error(await set_role(auth_client, ref, "platform-admin", headers), 403, "EMAIL_NOT_VERIFIED")
            assert err["details"]["userId"] == squatter.id
    assert await role_of(auth_client, squatter) == "user"
    assert [e[2] for e in await role_audit(platform_db)] == [admin.id]
    # Once the address's holder proves it (the squatter's session goes), the promotion works.
    boss = await _magic_sign_in(auth_client, platform_db, "boss@example.com")
    assert boss.id == squatter.id
    assert (await set_role(auth_client, boss.id, "platform-admin", admin.headers)).status_code == 200
    assert await role_of(auth_client, boss) == "platform-admin"


async def test_an_unproven_admin_from_before_holds_no_admin_right(
        auth_client: httpx.AsyncClient, settings: Settings, platform_db: Database) -> None:
    """An account promoted while its address was unproven (before promotions needed a proof) acts as a
    plain user until the address's holder proves it."""
    squatter = await sign_up(auth_client, "boss@example.com", prefix="")
    eve = await sign_up(auth_client, "eve@example.com", prefix="")
    async with platform_db.session() as s:
        await s.execute(text("UPDATE users SET role = 'platform-admin' WHERE id = :u"), {"u": squatter.id})
    org = (await auth_client.post("/api/auth/organization/create", headers=eve.headers,
                                  json={"name": "Eve", "slug": "eve"})).json()
    assert await role_of(auth_client, squatter) == "user"
    assert_error(await auth_client.get("/api/nno/platform-admins", headers=squatter.headers), 403, "FORBIDDEN")
    assert_error(await set_role(auth_client, eve.id, "user", squatter.headers), 403, "FORBIDDEN")
    assert_error(await auth_client.get("/api/auth/organization/list-members", headers=squatter.headers,
                                       params={"organizationId": org["id"]}), 404, "ORGANIZATION_NOT_FOUND")
    assert (await auth_client.get("/api/nno/organizations", headers=squatter.headers)).json() == {"data": []}


async def test_first_sign_up_is_not_admin(auth_client: httpx.AsyncClient) -> None:
    first = await sign_up(auth_client, "first@example.com", prefix="")
    assert await role_of(auth_client, first) == "user"


def _magic_link(body: str) -> str:
    match = re.search(r"http://auth\.[a-z0-9]+\.nno\.localhost:8787(/api/auth/magic-link/verify\?token=\S+)", body)
    assert match, body
    return match.group(1)


async def _magic_sign_in(c: httpx.AsyncClient, db: Database, email: str) -> Account:
    # The link is the one mail to the address that was not there before the request: picking the newest
    # by created_at assumed the wall clock only moves forward between two requests.
    query = text("SELECT id, body FROM mail_outbox WHERE to_address = :t")
    async with db.session() as s:
        before = {mail_id for mail_id, _ in (await s.execute(query, {"t": email})).all()}
    assert (await c.post("/api/auth/sign-in/magic-link", json={"email": email})).status_code == 200
    async with db.session() as s:
        fresh = [body for mail_id, body in (await s.execute(query, {"t": email})).all() if mail_id not in before]
    assert len(fresh) == 1, fresh
    resp = await c.get(_magic_link(fresh[0]))
    assert resp.status_code == 200, resp.text
    c.cookies.clear()
    return Account(resp.json()["user"]["id"], email, resp.json()["token"])


async def test_admin_invite_is_applied_at_the_first_verified_sign_in(
    auth_client: httpx.AsyncClient, settings: Settings, platform_db: Database
) -> None:
    someone = await sign_up(auth_client, "someone@example.com", prefix="")
    # Only NNO may seed an admin: not a user's session, not another platform's token.
    assert_error(await auth_client.post("/api/nno/admin-invites", headers=someone.headers,
                                        json={"email": "boss@example.com"}), 403, "FORBIDDEN")
    assert_error(await auth_client.post("/api/nno/admin-invites", headers=bearer(nno_token(settings, OTHER_PID)),
                                        json={"email": "boss@example.com"}), 403, "WRONG_AUDIENCE")
    assert_error(await auth_client.post("/api/nno/admin-invites", json={"email": "boss@example.com"}),
                 401, "UNAUTHORIZED")
    assert_error(await auth_client.post("/api/nno/admin-invites", headers=bearer(nno_token(settings)),
                                        json={"email": "not an email"}), 400, "VALIDATION_ERROR")

    invited = await auth_client.post("/api/nno/admin-invites", headers=bearer(nno_token(settings)),
                                     json={"email": "Boss@Example.com"})
    assert invited.status_code == 201, invited.text
    assert invited.json()["status"] == "pending" and invited.json()["email"] == "boss@example.com"

    # A password sign-up with that address proves nothing about the mailbox: no admin.
    squatter = await sign_up(auth_client, "boss@example.com", prefix="")
    assert await role_of(auth_client, squatter) == "user"
    # The mailbox's owner signs in by magic link: now platform-admin.
    boss = await _magic_sign_in(auth_client, platform_db, "boss@example.com")
    assert await role_of(auth_client, boss) == "platform-admin"
    events = await role_audit(platform_db)
    assert [(e[0], e[2], e[4]["to"], e[4]["via"]) for e in events] == [
        ("user", boss.id, "platform-admin", "admin-invite")]

    # The grant is used up: demoted, a later sign-in does not make them admin again.
    assert (await set_role(auth_client, boss.id, "user", bearer(nno_token(settings)))).status_code == 200
    again = await _magic_sign_in(auth_client, platform_db, "boss@example.com")
    assert await role_of(auth_client, again) == "user"

    # An invite for an account whose address is already verified applies at once.
    now = await auth_client.post("/api/nno/admin-invites", headers=bearer(nno_token(settings)),
                                 json={"email": "boss@example.com"})
    assert now.status_code == 200 and now.json()["status"] == "granted"
    assert await role_of(auth_client, again) == "platform-admin"
    async with platform_db.session() as s:
        invites = (await s.execute(text("SELECT count(*) FROM audit_log WHERE action = 'user.admin_invite'"))
                   ).scalar_one()
    assert invites == 1


async def test_expired_admin_invite_is_not_applied(auth_client: httpx.AsyncClient, settings: Settings,
                                                   platform_db: Database) -> None:
    invited = await auth_client.post("/api/nno/admin-invites", headers=bearer(nno_token(settings)),
                                     json={"email": "late@example.com", "ttlSeconds": 60})
    assert invited.status_code == 201
    async with platform_db.session() as s:
        await s.execute(text("UPDATE verifications SET expires_at = 1 WHERE kind = 'platform_admin_grant'"))
    late = await _magic_sign_in(auth_client, platform_db, "late@example.com")
    assert await role_of(auth_client, late) == "user"


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80),
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_", max_size=40),
             min_size=3, max_size=3).map(".".join),
))
async def test_no_garbage_bearer_is_authority(auth_client: httpx.AsyncClient, token: str) -> None:
    resp = await auth_client.put("/api/nno/users/someone@example.com/role", headers=bearer(token),
                                 json={"role": "platform-admin"})
    assert resp.status_code in (401, 403), resp.text
    assert "error" in resp.json()


async def test_two_admins_demoting_each_other_at_once_leave_one(
    auth_client: httpx.AsyncClient, settings: Settings, platform_db: Database
) -> None:
    a = await _magic_sign_in(auth_client, platform_db, "a@example.com")
    b = await _magic_sign_in(auth_client, platform_db, "b@example.com")
    for who in (a, b):
        assert (await set_role(auth_client, who.id, "platform-admin", bearer(nno_token(settings)))).status_code == 200
    first, second = await asyncio.gather(set_role(auth_client, b.id, "user", a.headers),
                                         set_role(auth_client, a.id, "user", b.headers))
    assert sorted([first.status_code, second.status_code]) in ([200, 403], [200, 409]), (first.text, second.text)
    roles = [await role_of(auth_client, who) for who in (a, b)]
    assert roles.count("platform-admin") == 1
