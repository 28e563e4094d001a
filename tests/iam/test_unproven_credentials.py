"""Account pre-hijacking: whoever signs up first with someone else's address keeps nothing once the
address's owner proves it by magic link, with or without any admin invite, on NNO's IAM (through the
gateway) and on a per-platform auth app. Credentials set up before the proof (sessions, password, API
keys, approved device logins) are revoked and audited; requests that checked a credential just before
the revocation cannot mint a new one after it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from nno.core import Core
from nno.iam import throttle
from nno.kernel.config import Settings
from nno.kernel.db import Database
from tests.iam.conftest import (
    IAM,
    PASSWORD,
    Account,
    assert_error,
    platform_auth_client,
    platform_auth_db,
    rows,
    sign_in,
    sign_up,
)

VICTIM = "victim@example.com"
REVOKED = "user.unproven_credentials_revoked"


async def mailed_link(client: httpx.AsyncClient, db: Database, email: str, prefix: str = IAM) -> str:
    """Asks for a sign-in link; returns the path (under `prefix`) of the one just mailed, picked by id."""
    async with db.session() as s:
        seen = set((await s.execute(text("SELECT id FROM mail_outbox WHERE to_address = :t"), {"t": email}))
                   .scalars().all())
    assert (await client.post(f"{prefix}/api/auth/sign-in/magic-link", json={"email": email})).status_code == 200
    async with db.session() as s:
        mails = (await s.execute(text("SELECT id, body FROM mail_outbox WHERE to_address = :t"), {"t": email})
                 ).all()
    fresh = [body for mail_id, body in mails if mail_id not in seen]
    assert len(fresh) == 1, mails
    match = re.search(r"/api/auth/magic-link/verify\?token=\S+", fresh[0])
    assert match, fresh[0]
    return prefix + match.group(0)


async def open_link(client: httpx.AsyncClient, link: str) -> Account:
    resp = await client.get(link)
    assert resp.status_code == 200, resp.text
    client.cookies.clear()
    body = resp.json()
    return Account(body["user"]["id"], body["user"]["email"], body["token"])


async def revocations(db: Database, user_id: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    async with db.session() as s:
        found = (await s.execute(text("SELECT actor_id, platform_id, data FROM audit_log WHERE action = :a "
                                      "AND target_id = :u ORDER BY timestamp"), {"a": REVOKED, "u": user_id})).all()
    return [(r[0], r[1], r[2] if isinstance(r[2], dict) else json.loads(r[2])) for r in found]


def iam_db(core: Core) -> Database:
    return core.context("iam").db


# ---- NNO's IAM, through the gateway ---------------------------------------------------------------

async def test_a_squatter_loses_everything_when_the_owner_proves_the_address(
        client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    squatter = await sign_up(client, VICTIM, name="Not the victim")
    second = await sign_in(client, VICTIM)
    assert second.status_code == 200
    squatter_two = {"Authorization": f"Bearer {second.json()['token']}"}
    # The squatter also made an API key (as a member of some platform) and approved a device login
    # that nobody has collected yet: both would outlive their sessions.
    assert (await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers, json={
        "platformId": "plat000001", "userId": squatter.id, "role": "user"})).status_code == 201
    made = await client.post(f"{IAM}/api/nno/apikey", headers=squatter.headers,
                             json={"name": "ci", "platformId": "plat000001"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    code = (await client.post(f"{IAM}/api/nno/device/code", json={"client_id": "nno-cli"})).json()
    approved = await client.post(f"{IAM}/api/nno/device/approve", headers=squatter.headers,
                                 json={"userCode": code["user_code"]})
    assert approved.status_code == 200, approved.text

    victim = await open_link(client, await mailed_link(client, iam_db(core), VICTIM))
    assert victim.id == squatter.id  # the account goes to whoever proved the address

    for headers in (squatter.headers, squatter_two):
        assert_error(await client.get(f"{IAM}/api/nno/session", headers=headers), 401, "UNAUTHORIZED")
    assert_error(await sign_in(client, VICTIM), 401, "INVALID_EMAIL_OR_PASSWORD")
    assert_error(await client.post(f"{IAM}/api/nno/apikey/validate", headers=service_headers,
                                   json={"key": key}), 401, "INVALID_API_KEY")
    polled = await client.post(f"{IAM}/api/nno/device/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": code["device_code"]})
    assert polled.status_code == 400 and polled.json()["error"] == "access_denied", polled.text

    me = await client.get(f"{IAM}/api/nno/session", headers=victim.headers)
    assert me.status_code == 200 and me.json()["email"] == VICTIM
    profile = await client.get(f"{IAM}/api/auth/profile", headers=victim.headers)
    assert profile.status_code == 200 and profile.json()["user"]["emailVerified"] is True
    assert await revocations(iam_db(core), victim.id) == [(victim.id, None, {
        "via": "magic-link", "sessions": 2, "password": True, "apiKeys": 1, "deviceCodes": 1})]


async def test_own_password_is_lost_at_the_first_magic_link_but_magic_links_keep_working(
        client: httpx.AsyncClient, core: Core) -> None:
    """The documented trade-off: a person who signed up with a password and then proves their address by
    magic link loses that password and earlier sessions (IAM cannot tell them from a squatter)."""
    me = await sign_up(client, "ada@example.com")
    first = await open_link(client, await mailed_link(client, iam_db(core), "ada@example.com"))
    assert first.id == me.id
    assert_error(await client.get(f"{IAM}/api/nno/session", headers=me.headers), 401)
    assert_error(await sign_in(client, "ada@example.com"), 401, "INVALID_EMAIL_OR_PASSWORD")
    assert (await client.get(f"{IAM}/api/nno/session", headers=first.headers)).status_code == 200
    # Later magic links are sign-ins like any other: nothing more is revoked.
    again = await open_link(client, await mailed_link(client, iam_db(core), "ada@example.com"))
    assert again.id == me.id
    for who in (first, again):
        assert (await client.get(f"{IAM}/api/nno/session", headers=who.headers)).status_code == 200
    assert len(await revocations(iam_db(core), me.id)) == 1
    # An account made by a magic link had nothing unproven: no revocation at all.
    fresh = await open_link(client, await mailed_link(client, iam_db(core), "new@example.com"))
    assert await revocations(iam_db(core), fresh.id) == []


async def test_an_unproven_account_cannot_accept_an_org_invitation(
        client: httpx.AsyncClient, core: Core) -> None:
    """The squatter cannot use an invitation to the address (one it asked a second account of its own to
    send): accepting needs a proven address, and the owner's magic link still revokes everything."""
    squatter = await sign_up(client, VICTIM)
    accomplice = await sign_up(client, "accomplice@example.com")
    org = (await client.post(f"{IAM}/api/auth/organization/create", headers=accomplice.headers,
                             json={"name": "Trap", "slug": "trap"})).json()
    inv = (await client.post(f"{IAM}/api/auth/organization/invite-member", headers=accomplice.headers,
                             json={"email": VICTIM, "role": "member", "organizationId": org["id"]})).json()
    assert_error(await client.post(f"{IAM}/api/auth/organization/accept-invitation", headers=squatter.headers,
                                   json={"invitationId": inv["id"]}), 403, "EMAIL_NOT_VERIFIED")
    assert (await rows(core, "SELECT email_verified FROM users WHERE id = :u", u=squatter.id))[0][0] in (False, 0)
    assert await rows(core, "SELECT id FROM members WHERE user_id = :u", u=squatter.id) == []

    await open_link(client, await mailed_link(client, iam_db(core), VICTIM))
    assert_error(await client.get(f"{IAM}/api/nno/session", headers=squatter.headers), 401)
    assert_error(await sign_in(client, VICTIM), 401, "INVALID_EMAIL_OR_PASSWORD")


async def test_a_revoked_session_still_vouched_for_by_the_gateway_mints_nothing(
        client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    """The gateway caches a session's validation for a few seconds, so right after the revocation it may
    still forward the squatter as the user: IAM itself refuses to mint an API key or approve a device
    login from a session that is gone."""
    squatter = await sign_up(client, VICTIM)
    assert (await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers, json={
        "platformId": "plat000001", "userId": squatter.id, "role": "user"})).status_code == 201
    assert (await client.get(f"{IAM}/api/auth/profile", headers=squatter.headers)).status_code == 200
    await open_link(client, await mailed_link(client, iam_db(core), VICTIM))

    assert_error(await client.post(f"{IAM}/api/nno/apikey", headers=squatter.headers,
                                   json={"name": "late", "platformId": "plat000001"}), 401)
    code = (await client.post(f"{IAM}/api/nno/device/code", json={})).json()
    assert_error(await client.post(f"{IAM}/api/nno/device/approve", headers=squatter.headers,
                                   json={"userCode": code["user_code"]}), 401)
    assert await rows(core, "SELECT id FROM api_keys") == []
    assert (await rows(core, "SELECT status FROM device_codes"))[0][0] == "pending"


def hold_once(monkeypatch: pytest.MonkeyPatch, name: str) -> tuple[asyncio.Event, asyncio.Event]:
    """(reached, release): the first call of `throttle.<name>` waits, once it has run, for `release`."""
    reached, release = asyncio.Event(), asyncio.Event()
    original: Callable[..., Awaitable[Any]] = getattr(throttle, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            await release.wait()
        return result

    monkeypatch.setattr(throttle, name, wrapper)
    return reached, release


@pytest.fixture
def held_after_password_matched(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """A password sign-in waits right after its password matched (it then clears its throttle)."""
    return hold_once(monkeypatch, "clear")


@pytest.fixture
def held_after_account_read(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """A password change waits after it read the account, before it checks the current password."""
    return hold_once(monkeypatch, "check_locked")


async def test_a_password_checked_before_the_proof_signs_nobody_in_after_it(
        client: httpx.AsyncClient, core: Core, held_after_password_matched: tuple[asyncio.Event, asyncio.Event]
) -> None:
    reached, release = held_after_password_matched
    await sign_up(client, VICTIM)
    link = await mailed_link(client, iam_db(core), VICTIM)
    attempt = asyncio.create_task(client.post(f"{IAM}/api/auth/sign-in/email",
                                              json={"email": VICTIM, "password": PASSWORD}))
    await asyncio.wait_for(reached.wait(), 10)  # the squatter's password has just matched
    victim = await open_link(client, link)
    release.set()
    assert_error(await attempt, 401, "INVALID_EMAIL_OR_PASSWORD")
    sessions = await rows(core, "SELECT method FROM sessions WHERE user_id = :u", u=victim.id)
    assert [r[0] for r in sessions] == ["magic-link"]


async def test_a_password_change_under_way_at_the_proof_sets_no_password(
        client: httpx.AsyncClient, core: Core, held_after_account_read: tuple[asyncio.Event, asyncio.Event]
) -> None:
    reached, release = held_after_account_read
    squatter = await sign_up(client, VICTIM)
    link = await mailed_link(client, iam_db(core), VICTIM)
    change = asyncio.create_task(client.post(f"{IAM}/api/auth/change-password", headers=squatter.headers, json={
        "currentPassword": PASSWORD, "newPassword": "another-horse-7"}))
    await asyncio.wait_for(reached.wait(), 10)
    await open_link(client, link)
    release.set()
    assert_error(await change, 400, "INVALID_PASSWORD")
    assert (await rows(core, "SELECT password_hash FROM users WHERE id = :u", u=squatter.id))[0][0] is None
    assert_error(await client.post(f"{IAM}/api/auth/sign-in/email",
                                   json={"email": VICTIM, "password": "another-horse-7"}), 401)


# ---- a per-platform auth app, without any admin invite -------------------------------------------

PID = "q7w8e9r0t1"


@pytest.fixture
async def platform_db(tmp_path: Path, settings: Settings) -> AsyncIterator[Database]:
    async with platform_auth_db(settings, tmp_path, PID) as db:
        yield db


@pytest.fixture
async def auth_client(platform_db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with platform_auth_client(platform_db, settings, PID) as client:
        yield client


async def test_the_same_rule_on_a_platform_auth_app(auth_client: httpx.AsyncClient, platform_db: Database) -> None:
    squatter = await sign_up(auth_client, VICTIM, prefix="")
    victim = await open_link(auth_client, await mailed_link(auth_client, platform_db, VICTIM, prefix=""))
    assert victim.id == squatter.id
    assert_error(await auth_client.get("/api/nno/session", headers=squatter.headers), 401, "UNAUTHORIZED")
    assert_error(await auth_client.post("/api/auth/sign-in/email", json={"email": VICTIM, "password": PASSWORD}),
                 401, "INVALID_EMAIL_OR_PASSWORD")
    me = await auth_client.get("/api/nno/session", headers=victim.headers)
    assert me.status_code == 200 and me.json()["role"] == "user"
    assert await revocations(platform_db, victim.id) == [(victim.id, PID, {
        "via": "magic-link", "sessions": 1, "password": True, "apiKeys": 0, "deviceCodes": 0})]
