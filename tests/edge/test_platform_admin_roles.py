"""Platform-level roles on a platform's auth Worker, reached by Host through the local cloud: NNO mints
a service token for that platform with its IAM and makes a user platform-admin; the token opens no
other platform's Worker, and that admin's session means nothing elsewhere."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable

import httpx
import pytest

from nno.provisioning.providers.local import LocalProvider
from tests.d1sql import d1_rows
from tests.edge.conftest import P1, P2
from tests.edge.test_auth_worker import deploy_auth

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nno.iam.platform_roles") is None,
                                reason="IAM's platform roles are not written yet")

At = Callable[[str], httpx.AsyncClient]
PASSWORD = "correct horse battery staple"


async def _sign_up(c: httpx.AsyncClient, email: str) -> tuple[str, dict[str, str]]:
    resp = await c.post("/api/auth/sign-up/email", json={"name": "U", "email": email, "password": PASSWORD})
    assert resp.status_code in (200, 201), resp.text
    c.cookies.clear()
    return resp.json()["user"]["id"], {"Authorization": f"Bearer {resp.json()['token']}"}


async def _magic_sign_in(c: httpx.AsyncClient, provider: LocalProvider, pid: str, email: str
                         ) -> tuple[str, dict[str, str]]:
    """Signed in by the magic link the Worker just mailed (its D1's development outbox): a proven address,
    the only kind that may be made platform-admin."""
    assert (await c.post("/api/auth/sign-in/magic-link", json={"email": email})).status_code == 200
    body = (await d1_rows(provider.cloud, f"{pid}-default-auth-db",
                          "SELECT body FROM mail_outbox WHERE to_address = :a AND kind = 'magic_link' "
                          "ORDER BY created_at DESC LIMIT 1", {"a": email}))[0][0]
    match = re.search(r"/api/auth/magic-link/verify\?token=\S+", body)
    assert match, body
    resp = await c.get(match.group(0))
    assert resp.status_code == 200, resp.text
    c.cookies.clear()
    return resp.json()["user"]["id"], {"Authorization": f"Bearer {resp.json()['token']}"}


async def _nno_token(client: httpx.AsyncClient, service_headers: dict[str, str], pid: str) -> dict[str, str]:
    minted = await client.post("/api/v1/iam/api/nno/service-token", headers=service_headers,
                               json={"audience": f"auth:{pid}", "subject": "provisioning", "ttlSeconds": 60})
    assert minted.status_code == 200, minted.text
    return {"Authorization": f"Bearer {minted.json()['token']}"}


async def test_nno_makes_a_platform_admin_on_that_platform_only(
    provider: LocalProvider, at: At, client: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    await deploy_auth(provider, P1)
    await deploy_auth(provider, P2)
    auth1, auth2 = at(f"auth.svc.default.{P1}.nno.localhost"), at(f"auth.svc.default.{P2}.nno.localhost")
    owner_id, owner = await _magic_sign_in(auth1, provider, P1, "owner@example.com")
    user_id, user = await _magic_sign_in(auth1, provider, P1, "user@example.com")
    other_id, _ = await _sign_up(auth2, "owner@example.com")

    # Without NNO's token, nobody (not even by forging gateway headers) can make themselves admin.
    assert (await auth1.put(f"/api/nno/users/{owner_id}/role", json={"role": "platform-admin"},
                            headers={"X-Nno-Auth-Type": "service", "X-Nno-Role": "service"})).status_code == 401
    assert (await auth1.put(f"/api/nno/users/{owner_id}/role", json={"role": "platform-admin"},
                            headers=owner)).status_code == 403

    token1 = await _nno_token(client, service_headers, P1)
    promoted = await auth1.put("/api/nno/users/owner@example.com/role", json={"role": "platform-admin"},
                               headers=token1)
    assert promoted.status_code == 200, promoted.text
    session = await auth1.get("/api/nno/session", headers=owner)
    assert session.json()["role"] == "platform-admin" and session.json()["platformId"] == P1

    # P1's token is refused by P2's Worker; P1's admin session is no session at all there.
    refused = await auth2.put(f"/api/nno/users/{other_id}/role", json={"role": "platform-admin"}, headers=token1)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "WRONG_AUDIENCE"
    assert (await auth2.put(f"/api/nno/users/{other_id}/role", json={"role": "platform-admin"},
                            headers=owner)).status_code == 401

    # The platform's admin, with their session, promotes another user of the same platform.
    assert (await auth1.put(f"/api/nno/users/{user_id}/role", json={"role": "platform-admin"},
                            headers=owner)).status_code == 200
    assert (await auth1.get("/api/nno/session", headers=user)).json()["role"] == "platform-admin"

    events = await d1_rows(provider.cloud, f"{P1}-default-auth-db",
                           "SELECT actor_type, actor_id, target_id, data FROM audit_log "
                           "WHERE action = 'user.role_change' ORDER BY timestamp, id")
    # `data` is JSON: a string in SQLite, already decoded from PostgreSQL.
    assert [(e[0], e[1], e[2], (json.loads(e[3]) if isinstance(e[3], str) else e[3])["to"]) for e in events] == [
        ("service", "provisioning", owner_id, "platform-admin"), ("user", owner_id, user_id, "platform-admin")]
    assert await d1_rows(provider.cloud, f"{P2}-default-auth-db", "SELECT role FROM users") == [("user",)]
