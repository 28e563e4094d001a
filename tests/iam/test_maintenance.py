"""Housekeeping deletes only what can no longer be used."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from nno.core import Core
from nno.iam.maintenance import purge_expired
from tests.iam.conftest import IAM, rows, sign_up


async def test_purge_removes_only_dead_rows(client: httpx.AsyncClient, core: Core) -> None:
    live = await sign_up(client, "live@example.com")
    await sign_up(client, "dead@example.com")
    await client.post(f"{IAM}/api/auth/sign-in/magic-link", json={"email": "live@example.com"})
    await client.post(f"{IAM}/api/nno/device/code", json={})
    db = core.context("iam").db
    async with db.session() as s:
        await s.execute(text("UPDATE sessions SET expires_at = 1 WHERE user_id <> :u"), {"u": live.id})
    counts = await purge_expired(db)
    assert counts["sessions"] == 1 and counts["verifications"] == 0 and counts["device_codes"] == 0
    assert len(await rows(core, "SELECT id FROM sessions")) == 1
    assert (await client.get(f"{IAM}/api/nno/session", headers=live.headers)).status_code == 200
    # A day after expiry, one-time records go too.
    far = 10**13
    counts = await purge_expired(db, now=far)
    assert counts["verifications"] == 1 and counts["device_codes"] == 1
