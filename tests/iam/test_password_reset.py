"""Password reset (Better Auth's `request-password-reset` / `forget-password` and `reset-password`), on
NNO's IAM and on a per-platform auth app, on both backends.

NNO's IAM is called directly (its ASGI app, as the gateway's in-process binding does, without
credentials) until the gateway lists the routes as public; `test_the_flow_through_the_gateway` runs
the same flow through the gateway and is skipped until `PUBLIC_ROUTES` has them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from nno.core import Core
from nno.gateway.routing import is_public
from nno.iam import service_tokens
from nno.iam.platform_roles import platform_audience
from nno.kernel.config import Settings
from nno.kernel.db import Database
from tests.iam.conftest import IAM, PASSWORD, Account, assert_error, platform_auth_client, platform_auth_db, sign_up

NEW_PASSWORD = "battery-staple-7"
PID = "r5t8w2q9zk"
REQUESTED = {"status": True, "message": "If this email exists in our system, check your email for the reset link"}
RESET_ROUTES = (("POST", f"{IAM}/api/auth/request-password-reset"), ("POST", f"{IAM}/api/auth/forget-password"),
                ("GET", f"{IAM}/api/auth/reset-password"), ("POST", f"{IAM}/api/auth/reset-password"))


# ---- helpers ---------------------------------------------------------------------------------------

def iam_db(core: Core) -> Database:
    return core.context("iam").db


async def mail_ids(db: Database, email: str) -> set[str]:
    async with db.session() as s:
        return set((await s.execute(text("SELECT id FROM mail_outbox WHERE to_address = :t"), {"t": email}))
                   .scalars().all())


async def new_mails(db: Database, email: str, seen: set[str]) -> list[str]:
    async with db.session() as s:
        found = (await s.execute(text("SELECT id, body FROM mail_outbox WHERE to_address = :t"), {"t": email})).all()
    return [body for mail_id, body in found if mail_id not in seen]


async def request_reset(client: httpx.AsyncClient, email: str, prefix: str = "",
                        route: str = "request-password-reset", **extra: Any) -> httpx.Response:
    resp = await client.post(f"{prefix}/api/auth/{route}", json={"email": email, **extra})
    client.cookies.clear()
    return resp


async def mailed_link(client: httpx.AsyncClient, db: Database, email: str, prefix: str = "",
                      **extra: Any) -> str:
    """Asks for a reset; returns the full URL of the link just mailed."""
    seen = await mail_ids(db, email)
    resp = await request_reset(client, email, prefix, **extra)
    assert resp.status_code == 200 and resp.json() == REQUESTED, resp.text
    fresh = await new_mails(db, email, seen)
    assert len(fresh) == 1, fresh
    match = re.search(r"https?://\S+/api/auth/reset-password\?token=\S+", fresh[0])
    assert match, fresh[0]
    return match.group(0)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def reset(client: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD, prefix: str = ""
                ) -> httpx.Response:
    return await client.post(f"{prefix}/api/auth/reset-password", json={"token": token, "newPassword": password})


async def password_sign_in(client: httpx.AsyncClient, email: str, password: str, prefix: str = "") -> httpx.Response:
    resp = await client.post(f"{prefix}/api/auth/sign-in/email", json={"email": email, "password": password})
    client.cookies.clear()
    return resp


async def session_ok(client: httpx.AsyncClient, acct: Account, prefix: str = "") -> bool:
    resp = await client.get(f"{prefix}/api/auth/get-session", headers=acct.headers)
    assert resp.status_code == 200, resp.text
    return resp.json() is not None


async def audit_rows(db: Database, action: str, target: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    sql = "SELECT outcome, data FROM audit_log WHERE action = :a"
    params: dict[str, Any] = {"a": action}
    if target is not None:
        sql, params["t"] = sql + " AND target_id = :t", target
    async with db.session() as s:
        found = (await s.execute(text(sql + " ORDER BY timestamp"), params)).all()
    return [(r[0], r[1] if isinstance(r[1], dict) else json.loads(r[1])) for r in found]


def assert_envelope(resp: httpx.Response) -> None:
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert_error(resp, resp.status_code)


# ---- fixtures --------------------------------------------------------------------------------------

@pytest.fixture
async def direct(core: Core, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """NNO's IAM app itself, reached without the gateway (and so without any credential)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.apps["iam"]),
                                 base_url=settings.public_url) as c:
        yield c


@pytest.fixture
async def platform_db(tmp_path: Path, settings: Settings) -> AsyncIterator[Database]:
    async with platform_auth_db(settings, tmp_path, PID) as db:
        yield db


@pytest.fixture
async def auth_client(platform_db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with platform_auth_client(platform_db, settings, PID) as client:
        yield client


# ---- the flow on NNO's IAM -------------------------------------------------------------------------

async def test_forgotten_password_full_flow(direct: httpx.AsyncClient, core: Core, settings: Settings) -> None:
    db = iam_db(core)
    me = await sign_up(direct, "ada@example.com", prefix="")
    other = Account(me.id, me.email, (await password_sign_in(direct, me.email, PASSWORD)).json()["token"])

    link = await mailed_link(direct, db, me.email)
    # The link leads to NNO's IAM under its public path, the same base as magic links.
    assert link.startswith(f"{settings.public_url}/api/v1/iam/api/auth/reset-password?token=")
    token = token_of(link)
    assert len(token) >= 32
    stored = await db_rows(db, "SELECT token_hash FROM verifications WHERE kind = 'password_reset'")
    assert stored and all(token not in r[0] for r in stored)  # only a digest is stored
    opened = await direct.get(link.removeprefix(f"{settings.public_url}/api/v1/iam"))
    assert opened.status_code == 200 and opened.json() == {"status": True, "token": token}

    # A weak password is refused with the policy's message, and the link still works.
    weak = assert_error(await reset(direct, token, "short"), 422, "WEAK_PASSWORD")
    assert "at least 8 characters" in weak["details"]["requirements"]
    assert_error(await reset(direct, token, me.email), 422, "WEAK_PASSWORD")
    assert (await session_ok(direct, me)) and (await session_ok(direct, other))

    done = await reset(direct, token)
    assert done.status_code == 200 and done.json() == {"status": True}, done.text
    assert not await session_ok(direct, me) and not await session_ok(direct, other)
    assert_error(await password_sign_in(direct, me.email, PASSWORD), 401, "INVALID_EMAIL_OR_PASSWORD")
    signed = await password_sign_in(direct, me.email, NEW_PASSWORD)
    assert signed.status_code == 200 and signed.json()["user"]["emailVerified"] is True

    # Spent: neither the form nor the link accept it again, and nothing changes.
    assert_error(await reset(direct, token, "another-pass-5"), 400, "INVALID_TOKEN")
    assert_error(await direct.get("/api/auth/reset-password", params={"token": token}), 400, "INVALID_TOKEN")
    assert (await password_sign_in(direct, me.email, NEW_PASSWORD)).status_code == 200

    # The address was unproven (a password sign-up): the reset proved it, through the one revocation rule.
    assert await audit_rows(db, "user.unproven_credentials_revoked", me.id) == [("success", {
        "via": "password-reset", "sessions": 2, "password": True, "apiKeys": 0, "deviceCodes": 0})]
    # Audited: the reset, and the attempt with the spent token (a refused password spends nothing).
    assert [r[0] for r in await audit_rows(db, "user.password_reset")] == ["success", "failure"]


async def db_rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.session() as s:
        return list((await s.execute(text(sql), params)).all())


async def test_a_proven_account_loses_its_sessions_but_nothing_is_revoked_as_unproven(
        direct: httpx.AsyncClient, core: Core) -> None:
    db = iam_db(core)
    me = await sign_up(direct, "bo@example.com", prefix="")
    assert (await reset(direct, token_of(await mailed_link(direct, db, me.email)))).status_code == 200
    sessions = [Account(me.id, me.email, (await password_sign_in(direct, me.email, NEW_PASSWORD)).json()["token"])
                for _ in range(2)]
    assert (await reset(direct, token_of(await mailed_link(direct, db, me.email)), "third-pass-3")).status_code == 200
    assert [await session_ok(direct, a) for a in sessions] == [False, False]
    assert (await password_sign_in(direct, me.email, "third-pass-3")).status_code == 200
    assert len(await audit_rows(db, "user.unproven_credentials_revoked", me.id)) == 1
    assert (await audit_rows(db, "user.password_reset", me.id))[-1] == (
        "success", {"sessionsRevoked": 2, "deviceCodesDenied": 0})


async def test_an_account_made_by_magic_link_can_get_a_password(direct: httpx.AsyncClient, core: Core) -> None:
    """The case that motivated the flow: an account without a password (signed up by magic link, or
    whose password the first magic link revoked) can set one."""
    db = iam_db(core)
    seen = await mail_ids(db, "cy@example.com")
    assert (await direct.post("/api/auth/sign-in/magic-link", json={"email": "cy@example.com"})).status_code == 200
    magic = re.search(r"/api/auth/magic-link/verify\?token=\S+", (await new_mails(db, "cy@example.com", seen))[0])
    assert magic and (await direct.get(magic.group(0))).status_code == 200
    assert (await reset(direct, token_of(await mailed_link(direct, db, "cy@example.com")))).status_code == 200
    assert (await password_sign_in(direct, "cy@example.com", NEW_PASSWORD)).status_code == 200
    assert await audit_rows(db, "user.unproven_credentials_revoked") == []


async def test_no_account_enumeration(direct: httpx.AsyncClient, core: Core) -> None:
    db = iam_db(core)
    await sign_up(direct, "known@example.com", prefix="")
    for route in ("request-password-reset", "forget-password"):
        known = await request_reset(direct, "known@example.com", route=route)
        unknown = await request_reset(direct, "nobody@example.com", route=route)
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (200, REQUESTED)
    assert len(await new_mails(db, "known@example.com", set())) == 2
    assert await new_mails(db, "nobody@example.com", set()) == []
    # The per-address limit (as for magic links: 5 a minute) answers the same for both, too.
    for _ in range(3):
        assert (await request_reset(direct, "known@example.com")).status_code == 200
        assert (await request_reset(direct, "nobody@example.com")).status_code == 200
    known_limited = await request_reset(direct, "known@example.com")
    unknown_limited = await request_reset(direct, "nobody@example.com")
    for resp in (known_limited, unknown_limited):
        assert_error(resp, 429, "TOO_MANY_REQUESTS")
        assert resp.headers["retry-after"] == "60"
    assert known_limited.json()["error"]["message"] == unknown_limited.json()["error"]["message"]
    assert len(await new_mails(db, "known@example.com", set())) == 5
    # A token stored for an unknown address (never mailed) could not be used anyway.
    assert_error(await reset(direct, "x" * 43), 400, "INVALID_TOKEN")


async def test_an_expired_link_changes_nothing(direct: httpx.AsyncClient, core: Core) -> None:
    db = iam_db(core)
    me = await sign_up(direct, "exp@example.com", prefix="")
    token = token_of(await mailed_link(direct, db, me.email))
    expires = (await db_rows(db, "SELECT expires_at, created_at FROM verifications WHERE kind = 'password_reset'"))[0]
    assert expires[0] - expires[1] == 3600 * 1000
    async with db.session() as s:
        await s.execute(text("UPDATE verifications SET expires_at = created_at - 1 WHERE kind = 'password_reset'"))
    assert_error(await reset(direct, token), 400, "TOKEN_EXPIRED")
    assert_error(await direct.get("/api/auth/reset-password", params={"token": token}), 400, "TOKEN_EXPIRED")
    assert await session_ok(direct, me)
    assert (await password_sign_in(direct, me.email, PASSWORD)).status_code == 200
    assert await audit_rows(db, "user.unproven_credentials_revoked") == []


async def test_a_newer_request_retires_older_links(direct: httpx.AsyncClient, core: Core) -> None:
    db = iam_db(core)
    me = await sign_up(direct, "two@example.com", prefix="")
    first = token_of(await mailed_link(direct, db, me.email))
    second = token_of(await mailed_link(direct, db, me.email))
    assert_error(await reset(direct, first), 400, "INVALID_TOKEN")
    assert (await password_sign_in(direct, me.email, PASSWORD)).status_code == 200
    assert (await reset(direct, second)).status_code == 200
    assert (await password_sign_in(direct, me.email, NEW_PASSWORD)).status_code == 200


async def test_a_link_resets_once_even_when_used_twice_at_once(direct: httpx.AsyncClient, core: Core) -> None:
    me = await sign_up(direct, "race@example.com", prefix="")
    token = token_of(await mailed_link(direct, iam_db(core), me.email))
    results = await asyncio.gather(reset(direct, token, "first-pass-1"), reset(direct, token, "second-pass-2"))
    assert sorted(r.status_code for r in results) == [200, 400]
    winner = "first-pass-1" if results[0].status_code == 200 else "second-pass-2"
    loser = "second-pass-2" if winner == "first-pass-1" else "first-pass-1"
    assert (await password_sign_in(direct, me.email, winner)).status_code == 200
    assert_error(await password_sign_in(direct, me.email, loser), 401)


async def test_the_link_redirects_like_better_auth(direct: httpx.AsyncClient, core: Core, settings: Settings) -> None:
    db = iam_db(core)
    me = await sign_up(direct, "redir@example.com", prefix="")
    link = await mailed_link(direct, db, me.email, redirectTo="/console/reset?lang=en")
    token = token_of(link)
    path = link.removeprefix(f"{settings.public_url}/api/v1/iam")
    opened = await direct.get(path)
    assert opened.status_code == 302
    target = urlsplit(opened.headers["location"])
    assert target.path == "/console/reset" and parse_qs(target.query) == {"lang": ["en"], "token": [token]}
    # Better Auth's path form answers the same.
    same = await direct.get(f"/api/auth/reset-password/{token}", params={"callbackURL": "/console/reset"})
    own = settings.public_url
    assert same.status_code == 302 and same.headers["location"] == f"{own}/console/reset?token={token}"
    bad = await direct.get("/api/auth/reset-password/nope", params={"callbackURL": "/console/reset"})
    assert bad.status_code == 302 and bad.headers["location"] == f"{own}/console/reset?error=INVALID_TOKEN"
    # Another site is never a redirect target: such a redirectTo is left out of the mail, such a
    # callbackURL is ignored.
    foreign = await mailed_link(direct, db, me.email, redirectTo="https://evil.example/steal")
    assert "callbackURL" not in foreign and "evil" not in foreign
    token = token_of(foreign)
    ignored = await direct.get("/api/auth/reset-password", params={"token": token,
                                                                    "callbackURL": "https://evil.example/x"})
    assert ignored.status_code == 200 and ignored.json()["token"] == token
    # The token may also come in the query string of the POST (Better Auth accepts both).
    done = await direct.post("/api/auth/reset-password", params={"token": token}, json={"newPassword": NEW_PASSWORD})
    assert done.status_code == 200, done.text


async def test_a_squatter_keeps_nothing_when_the_owner_resets_the_password(
        direct: httpx.AsyncClient, client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    """Account pre-hijacking through a reset: the address's owner proves it with the reset link, so what
    the squatter set up (sessions, password, API key, approved device login) is revoked first."""
    db = iam_db(core)
    squatter = await sign_up(client, "victim@example.com", name="Not the victim")
    assert (await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers, json={
        "platformId": "plat000001", "userId": squatter.id, "role": "user"})).status_code == 201
    made = await client.post(f"{IAM}/api/nno/apikey", headers=squatter.headers,
                             json={"name": "ci", "platformId": "plat000001"})
    assert made.status_code == 201, made.text
    code = (await client.post(f"{IAM}/api/nno/device/code", json={"client_id": "nno-cli"})).json()
    assert (await client.post(f"{IAM}/api/nno/device/approve", headers=squatter.headers,
                              json={"userCode": code["user_code"]})).status_code == 200

    assert (await reset(direct, token_of(await mailed_link(direct, db, "victim@example.com")))).status_code == 200

    assert_error(await client.get(f"{IAM}/api/nno/session", headers=squatter.headers), 401, "UNAUTHORIZED")
    assert_error(await client.post(f"{IAM}/api/nno/apikey/validate", headers=service_headers,
                                   json={"key": made.json()["key"]}), 401, "INVALID_API_KEY")
    polled = await client.post(f"{IAM}/api/nno/device/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": code["device_code"]})
    assert polled.status_code == 400 and polled.json()["error"] == "access_denied", polled.text
    assert_error(await password_sign_in(direct, "victim@example.com", PASSWORD), 401,
                 "INVALID_EMAIL_OR_PASSWORD")
    assert (await password_sign_in(direct, "victim@example.com", NEW_PASSWORD)).status_code == 200
    assert await audit_rows(db, "user.unproven_credentials_revoked", squatter.id) == [("success", {
        "via": "password-reset", "sessions": 1, "password": True, "apiKeys": 1, "deviceCodes": 1})]


# ---- bad input never breaks anything -----------------------------------------------------------------

_texts = st.text(st.characters(codec="utf-8"), max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=st.one_of(st.emails(), _texts, st.integers(), st.none()),
       redirect=st.one_of(st.none(), _texts, st.just("/ok"), st.just("https://evil.example/")),
       route=st.sampled_from(["request-password-reset", "forget-password"]))
async def test_requests_answer_200_or_an_envelope(direct: httpx.AsyncClient, email: Any, redirect: str | None,
                                                  route: str) -> None:
    body: dict[str, Any] = {"email": email}
    if redirect is not None:
        body["redirectTo"] = redirect
    resp = await direct.post(f"/api/auth/{route}", json=body)
    assert_envelope(resp)
    if resp.status_code == 200:
        assert resp.json() == REQUESTED


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(st.none(), _texts, st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=600,
                                                   max_size=700), st.integers()),
       password=st.one_of(_texts, st.text(min_size=1000, max_size=1100), st.none(), st.booleans()),
       in_query=st.booleans())
async def test_resets_with_bad_tokens_answer_an_envelope_and_change_nothing(
        direct: httpx.AsyncClient, core: Core, token: Any, password: Any, in_query: bool) -> None:
    if in_query and isinstance(token, str):
        resp = await direct.post("/api/auth/reset-password", params={"token": token}, json={"newPassword": password})
    else:
        resp = await direct.post("/api/auth/reset-password", json={"token": token, "newPassword": password})
    assert_envelope(resp)
    assert resp.status_code in (400, 422), resp.text
    got = await direct.get("/api/auth/reset-password", params={"token": token if isinstance(token, str) else ""})
    assert_envelope(got)
    assert got.status_code == 400
    assert await db_rows(iam_db(core), "SELECT id FROM users WHERE password_hash IS NOT NULL") == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=st.one_of(_texts, st.text(min_size=120, max_size=140)))
async def test_any_new_password_is_set_or_refused_without_spending_the_link(
        direct: httpx.AsyncClient, core: Core, password: str) -> None:
    email = "fuzz@example.com"
    if not (await db_rows(iam_db(core), "SELECT id FROM users WHERE email = :e", e=email)):
        await sign_up(direct, email, prefix="")
    async with iam_db(core).session() as s:  # the per-address limit is not what this test is about
        await s.execute(text("DELETE FROM verifications"))
    token = token_of(await mailed_link(direct, iam_db(core), email))
    resp = await reset(direct, token, password)
    assert_envelope(resp)
    if resp.status_code == 200:
        assert (await password_sign_in(direct, email, password)).status_code == 200
    else:  # the policy's refusal, or a NUL character (refused for every stored text)
        assert_error(resp, 400 if "\x00" in password else 422, "VALIDATION_ERROR" if "\x00" in password
                     else "WEAK_PASSWORD")
        assert (await direct.get("/api/auth/reset-password", params={"token": token})).status_code == 200


# ---- a per-platform auth app -------------------------------------------------------------------------

async def test_the_flow_on_a_platform_auth_app(auth_client: httpx.AsyncClient, platform_db: Database) -> None:
    me = await sign_up(auth_client, "end@user.com", prefix="")
    link = await mailed_link(auth_client, platform_db, me.email)
    # The link leads to the platform's own auth worker, as its magic links do.
    assert link.startswith(f"http://auth.{PID}.nno.localhost:8787/api/auth/reset-password?token=")
    assert (await auth_client.get(link)).status_code == 200
    assert (await reset(auth_client, token_of(link))).status_code == 200
    assert not await session_ok(auth_client, me)
    assert_error(await password_sign_in(auth_client, me.email, PASSWORD), 401, "INVALID_EMAIL_OR_PASSWORD")
    assert (await password_sign_in(auth_client, me.email, NEW_PASSWORD)).status_code == 200
    assert (await request_reset(auth_client, "unknown@user.com")).json() == REQUESTED
    assert await new_mails(platform_db, "unknown@user.com", set()) == []
    rows = await db_rows(platform_db, "SELECT platform_id FROM audit_log WHERE action = 'user.password_reset'")
    assert rows == [(PID,)]


async def test_a_squatter_on_a_platform_auth_app_keeps_nothing(auth_client: httpx.AsyncClient,
                                                               platform_db: Database) -> None:
    squatter = await sign_up(auth_client, "victim@example.com", prefix="")
    assert (await reset(auth_client, token_of(await mailed_link(auth_client, platform_db, squatter.email)))
            ).status_code == 200
    assert not await session_ok(auth_client, squatter)
    assert_error(await password_sign_in(auth_client, squatter.email, PASSWORD), 401,
                 "INVALID_EMAIL_OR_PASSWORD")
    assert await audit_rows(platform_db, "user.unproven_credentials_revoked", squatter.id) == [("success", {
        "via": "password-reset", "sessions": 1, "password": True, "apiKeys": 0, "deviceCodes": 0})]


async def test_a_reset_applies_a_pending_admin_invite_as_a_magic_link_does(
        auth_client: httpx.AsyncClient, platform_db: Database, settings: Settings) -> None:
    """Provisioning invites a platform's owner as platform-admin; the invite waits for a proof of the
    address. A reset link is one, so the owner who signed up with a password and reset it is admin."""
    nno = {"Authorization": "Bearer " + service_tokens.mint(settings, subject="provisioning",
                                                            audience=platform_audience(PID), ttl_s=60)[0]}
    owner = await sign_up(auth_client, "owner@example.com", prefix="")
    invited = await auth_client.post("/api/nno/admin-invites", headers=nno, json={"email": owner.email})
    assert invited.status_code == 201 and invited.json()["status"] == "pending", invited.text
    assert (await reset(auth_client, token_of(await mailed_link(auth_client, platform_db, owner.email)))
            ).status_code == 200
    token = (await password_sign_in(auth_client, owner.email, NEW_PASSWORD)).json()["token"]
    me = await auth_client.get("/api/nno/session", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["role"] == "platform-admin", me.text


# ---- through the gateway ------------------------------------------------------------------------------

@pytest.mark.skipif(not all(is_public(method, path) for method, path in RESET_ROUTES),
                    reason="the gateway does not list the password-reset routes as public yet (PUBLIC_ROUTES)")
async def test_the_flow_through_the_gateway(client: httpx.AsyncClient, core: Core, settings: Settings) -> None:
    """Without any credential, as a person who forgot their password is."""
    me = await sign_up(client, "gw@example.com")
    link = await mailed_link(client, iam_db(core), me.email, prefix=IAM, route="forget-password")
    assert (await client.get(link.removeprefix(settings.public_url))).status_code == 200
    assert (await reset(client, token_of(link), prefix=IAM)).status_code == 200
    assert_error(await client.get(f"{IAM}/api/nno/session", headers=me.headers), 401)
    assert (await password_sign_in(client, me.email, NEW_PASSWORD, prefix=IAM)).status_code == 200
    assert (await request_reset(client, "nobody@example.com", prefix=IAM)).json() == REQUESTED
