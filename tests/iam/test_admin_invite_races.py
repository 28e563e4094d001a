"""Admin invites and magic-link sign-ins on a per-platform auth app when requests overlap.

The sign-in is held open, inside its transaction, right after it looked for an admin grant (a wrapped
`platform_roles.consume_grant` that waits), and the other request runs in that window: the
interleaving a loaded server produces by chance, made certain here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from nno.iam import platform_roles, service_tokens
from nno.iam.platform_roles import platform_audience
from nno.kernel.config import Settings
from nno.kernel.db import Database
from tests.iam.conftest import PASSWORD, Account, assert_error, platform_auth_client, platform_auth_db, sign_up

PID = "k3m9p2xw7q"
HOLD_S = 0.4


@pytest.fixture
async def platform_db(tmp_path: Path, settings: Settings) -> AsyncIterator[Database]:
    async with platform_auth_db(settings, tmp_path, PID) as db:
        yield db


@pytest.fixture
async def c(platform_db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with platform_auth_client(platform_db, settings, PID) as client:
        yield client


@pytest.fixture
def held_sign_in(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set once a sign-in has looked for its grant; that sign-in then waits HOLD_S before committing."""
    reached = asyncio.Event()
    original = platform_roles.consume_grant

    async def consume_then_wait(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            await asyncio.sleep(HOLD_S)

    monkeypatch.setattr(platform_roles, "consume_grant", consume_then_wait)
    return reached


def nno_headers(settings: Settings) -> dict[str, str]:
    token = service_tokens.mint(settings, subject="provisioning", audience=platform_audience(PID), ttl_s=60)[0]
    return {"Authorization": f"Bearer {token}"}


async def magic_link(c: httpx.AsyncClient, db: Database, email: str) -> str:
    """Asks for a sign-in link and returns the path of the one just mailed (by mail id, not by time)."""
    async with db.session() as s:
        seen = set((await s.execute(text("SELECT id FROM mail_outbox WHERE to_address = :t"), {"t": email}))
                   .scalars().all())
    assert (await c.post("/api/auth/sign-in/magic-link", json={"email": email})).status_code == 200
    async with db.session() as s:
        mails = (await s.execute(text("SELECT id, body FROM mail_outbox WHERE to_address = :t"), {"t": email})
                 ).all()
    fresh = [body for mail_id, body in mails if mail_id not in seen]
    assert len(fresh) == 1, mails
    match = re.search(r"(/api/auth/magic-link/verify\?token=\S+)", fresh[0])
    assert match, fresh[0]
    return match.group(1)


async def verified(c: httpx.AsyncClient, link: str) -> Account:
    resp = await c.get(link)
    assert resp.status_code == 200, resp.text
    c.cookies.clear()
    return Account(resp.json()["user"]["id"], resp.json()["user"]["email"], resp.json()["token"])


async def role_of(c: httpx.AsyncClient, who: Account) -> str:
    resp = await c.get("/api/nno/session", headers=who.headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["role"])


async def live_grants(db: Database, email: str) -> int:
    async with db.session() as s:
        return int((await s.execute(text(
            "SELECT count(*) FROM verifications WHERE kind = 'platform_admin_grant' AND identifier = :e "
            "AND used_at IS NULL"), {"e": email})).scalar_one())


@pytest.mark.parametrize("account_exists", [False, True], ids=["new-account", "unverified-account"])
async def test_invite_during_the_first_sign_in_is_not_lost(
    c: httpx.AsyncClient, platform_db: Database, settings: Settings, held_sign_in: asyncio.Event,
    account_exists: bool,
) -> None:
    """The invite arrives while the address's first magic-link sign-in is under way: it must apply,
    not wait as a pending grant for a later sign-in."""
    if account_exists:
        await sign_up(c, "boss@example.com", prefix="")
    link = await magic_link(c, platform_db, "boss@example.com")
    sign_in = asyncio.create_task(c.get(link))
    await asyncio.wait_for(held_sign_in.wait(), 10)
    invited = await c.post("/api/nno/admin-invites", headers=nno_headers(settings),
                           json={"email": "boss@example.com"})
    signed = await sign_in
    assert signed.status_code == 200, signed.text
    assert invited.status_code == 200 and invited.json()["status"] == "granted", invited.text
    boss = Account(signed.json()["user"]["id"], "boss@example.com", signed.json()["token"])
    assert await role_of(c, boss) == "platform-admin"
    assert await live_grants(platform_db, "boss@example.com") == 0


async def test_a_sign_in_link_works_once_even_when_used_twice_at_once(
    c: httpx.AsyncClient, platform_db: Database, held_sign_in: asyncio.Event
) -> None:
    link = await magic_link(c, platform_db, "ml@example.com")
    first = asyncio.create_task(c.get(link))
    await asyncio.wait_for(held_sign_in.wait(), 10)
    second = await c.get(link)
    assert (await first).status_code == 200
    assert_error(second, 401, "INVALID_TOKEN")
    async with platform_db.session() as s:
        sessions = (await s.execute(text("SELECT count(*) FROM sessions"))).scalar_one()
    assert sessions == 1


async def test_no_older_grant_outlives_the_one_applied(
    c: httpx.AsyncClient, platform_db: Database, settings: Settings
) -> None:
    """Two live grants for one address (two invites that overlapped, or a row from before grants were
    serialised): signing in uses them all up, so a later demotion sticks."""
    for _ in range(2):
        resp = await c.post("/api/nno/admin-invites", headers=nno_headers(settings),
                            json={"email": "boss@example.com"})
        assert resp.status_code == 201, resp.text
    async with platform_db.session() as s:  # revive the superseded one, as an overlap would leave it
        await s.execute(text("UPDATE verifications SET used_at = NULL WHERE kind = 'platform_admin_grant'"))
    assert await live_grants(platform_db, "boss@example.com") == 2
    boss = await verified(c, await magic_link(c, platform_db, "boss@example.com"))
    assert await role_of(c, boss) == "platform-admin"
    assert await live_grants(platform_db, "boss@example.com") == 0
    down = await c.put(f"/api/nno/users/{boss.id}/role", headers=nno_headers(settings), json={"role": "user"})
    assert down.status_code == 200
    again = await verified(c, await magic_link(c, platform_db, "boss@example.com"))
    assert await role_of(c, again) == "user"


async def test_a_newer_invite_supersedes_a_pending_one_even_when_it_applies_at_once(
    c: httpx.AsyncClient, platform_db: Database, settings: Settings
) -> None:
    """A pending grant made while the address was unverified, then the address verified another way
    (set directly here; no route but a magic link verifies an address): the next invite applies at once
    and retires the pending grant."""
    pending = await c.post("/api/nno/admin-invites", headers=nno_headers(settings),
                           json={"email": "boss@example.com"})
    assert pending.status_code == 201
    boss = await sign_up(c, "boss@example.com", prefix="")
    async with platform_db.session() as s:
        await s.execute(text("UPDATE users SET email_verified = true WHERE id = :id"), {"id": boss.id})
    now = await c.post("/api/nno/admin-invites", headers=nno_headers(settings), json={"email": "boss@example.com"})
    assert now.status_code == 200 and now.json()["status"] == "granted", now.text
    assert await live_grants(platform_db, "boss@example.com") == 0


async def test_a_squatter_keeps_nothing_once_the_owner_is_made_admin(
    c: httpx.AsyncClient, platform_db: Database, settings: Settings
) -> None:
    """Someone signs up with a password under the invited address before its owner signs in: when the
    owner's magic link applies the grant, the squatter's session and password stop working."""
    invited = await c.post("/api/nno/admin-invites", headers=nno_headers(settings),
                           json={"email": "boss@example.com"})
    assert invited.status_code == 201
    squatter = await sign_up(c, "boss@example.com", prefix="")
    boss = await verified(c, await magic_link(c, platform_db, "boss@example.com"))
    assert boss.id == squatter.id and await role_of(c, boss) == "platform-admin"
    assert_error(await c.get("/api/nno/session", headers=squatter.headers), 401, "UNAUTHORIZED")
    assert_error(await c.post("/api/auth/sign-in/email", json={"email": "boss@example.com",
                                                               "password": PASSWORD}), 401, "INVALID_EMAIL_OR_PASSWORD")
    assert await role_of(c, boss) == "platform-admin"
