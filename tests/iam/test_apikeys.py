"""API keys: shown once, stored as SHA-256, scoped to a platform, refused by the gateway once revoked."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx

from nno.core import Core
from nno.kernel.config import Settings
from nno.kernel.ids import token_hash
from tests.conftest import BASE_URL
from tests.iam.conftest import IAM, Account, assert_error, rows, sign_up

K = f"{IAM}/api/nno/apikey"


async def _platform_admin(client: httpx.AsyncClient, service_headers: dict[str, str], email: str,
                          platform_id: str, role: str = "platform-admin") -> Account:
    acct = await sign_up(client, email)
    resp = await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers,
                             json={"platformId": platform_id, "userId": acct.id, "role": role})
    assert resp.status_code == 201
    return acct


async def test_create_list_validate_revoke(client: httpx.AsyncClient, core: Core,
                                           service_headers: dict[str, str]) -> None:
    admin = await _platform_admin(client, service_headers, "admin@example.com", "plat00000a")
    created = await client.post(K, headers=admin.headers, json={"name": "ci", "platformId": "plat00000a",
                                                               "permissions": ["billing:read"]})
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert re.fullmatch(r"nno_[A-Za-z0-9_-]{32,}", key)
    assert body["start"] == key[:8] and body["platformId"] == "plat00000a"
    # Stored only as a SHA-256 digest with a display prefix.
    stored = await rows(core, "SELECT key_hash, start FROM api_keys")
    assert stored == [(token_hash(key), key[:8])]
    for row in await rows(core, "SELECT * FROM api_keys"):
        assert all(key not in str(v) for v in row)
    # The list never shows the key again.
    listed = (await client.get(K, headers=admin.headers)).json()["data"]
    assert len(listed) == 1 and "key" not in listed[0] and listed[0]["lastUsedAt"] is None
    v = await client.post(f"{K}/validate", headers=service_headers, json={"key": key})
    assert v.status_code == 200
    assert {k: v.json()[k] for k in ("keyId", "platformId", "userId", "permissions")} == {
        "keyId": body["id"], "platformId": "plat00000a", "userId": admin.id, "permissions": ["billing:read"]}
    assert (await client.get(K, headers=admin.headers)).json()["data"][0]["lastUsedAt"] is not None
    # Validation is for services only.
    assert_error(await client.post(f"{K}/validate", headers=admin.headers, json={"key": key}), 403)
    for bad in ("nno_short", "not-a-key", "nno_" + "x" * 43):
        assert_error(await client.post(f"{K}/validate", headers=service_headers, json={"key": bad}), 401,
                     "INVALID_API_KEY")
    revoked = await client.delete(f"{K}/{body['id']}", headers=admin.headers)
    assert revoked.status_code == 200 and revoked.json()["revokedAt"]
    assert_error(await client.post(f"{K}/validate", headers=service_headers, json={"key": key}), 401)
    assert_error(await client.delete(f"{K}/{body['id']}", headers=admin.headers), 409, "API_KEY_REVOKED")
    assert_error(await client.delete(f"{K}/nosuchkey0", headers=admin.headers), 404, "API_KEY_NOT_FOUND")
    actions = [r[0] for r in await rows(core, "SELECT action FROM audit_log WHERE action LIKE 'apikey.%'")]
    assert {"apikey.create", "apikey.revoke", "apikey.validate"} <= set(actions)


async def test_key_input_rules(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    admin = await _platform_admin(client, service_headers, "a@example.com", "plat00000a")
    cases = [
        ({"name": "", "platformId": "plat00000a"}, 400, "VALIDATION_ERROR"),
        ({"name": "k", "platformId": "plat00000a", "permissions": ["Billing:Read"]}, 400, "VALIDATION_ERROR"),
        ({"name": "k", "platformId": "plat00000a", "expiresAt": 1000}, 422, "INVALID_EXPIRY"),
        ({"name": "k"}, 400, "VALIDATION_ERROR"),  # no platform given, none active
        ({"name": "k", "platformId": "plat00000b"}, 403, "NOT_A_PLATFORM_MEMBER"),
    ]
    for body, status, code in cases:
        assert_error(await client.post(K, headers=admin.headers, json=body), status, code)
    assert_error(await client.post(K, json={"name": "k", "platformId": "plat00000a"}), 401)
    assert await rows(core, "SELECT id FROM api_keys") == []


async def test_expired_key_is_refused(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    key = (await client.post(K, headers=service_headers, json={"name": "svc", "platformId": "plat00000c",
                                                              "expiresIn": 60})).json()["key"]
    assert (await client.post(f"{K}/validate", headers=service_headers, json={"key": key})).status_code == 200
    from sqlalchemy import text

    async with core.context("iam").db.session() as s:
        await s.execute(text("UPDATE api_keys SET expires_at = 1"))
    assert_error(await client.post(f"{K}/validate", headers=service_headers, json={"key": key}), 401)


async def test_platforms_cannot_see_or_revoke_each_others_keys(client: httpx.AsyncClient, core: Core,
                                                               service_headers: dict[str, str]) -> None:
    a = await _platform_admin(client, service_headers, "a@example.com", "plat00000a")
    b = await _platform_admin(client, service_headers, "b@example.com", "plat00000b")
    b_user = await _platform_admin(client, service_headers, "bu@example.com", "plat00000b", role="user")
    key_b = (await client.post(K, headers=b.headers, json={"name": "b", "platformId": "plat00000b"})).json()
    user_key = (await client.post(K, headers=b_user.headers, json={"name": "mine", "platformId": "plat00000b"})
                ).json()
    assert (await client.get(K, headers=a.headers)).json()["data"] == []
    assert (await client.get(K, params={"platformId": "plat00000b"}, headers=a.headers)).json()["data"] == []
    assert_error(await client.delete(f"{K}/{key_b['id']}", headers=a.headers), 404)
    assert_error(await client.post(K, headers=a.headers, json={"name": "x", "platformId": "plat00000b"}), 403)
    # A plain platform user sees only their own keys; the platform admin sees all of the platform's.
    assert [k["id"] for k in (await client.get(K, headers=b_user.headers)).json()["data"]] == [user_key["id"]]
    assert {k["id"] for k in (await client.get(K, headers=b.headers)).json()["data"]} == {key_b["id"], user_key["id"]}
    assert_error(await client.delete(f"{K}/{key_b['id']}", headers=b_user.headers), 404)
    assert (await client.delete(f"{K}/{user_key['id']}", headers=b.headers)).status_code == 200
    assert len(await rows(core, "SELECT id FROM api_keys WHERE revoked_at IS NULL")) == 1


async def test_revoked_key_is_refused_by_gateway_within_ttl(make_settings: Callable[..., Settings]) -> None:
    core = Core(make_settings(auth_cache_ttl_s=0.2), services=["iam"], with_edge=False)
    await core.start()
    svc = {"Authorization": f"Bearer {core.settings.auth_api_key}"}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=BASE_URL) as client:
            admin = await _platform_admin(client, svc, "k@example.com", "plat00000k")
            made = (await client.post(K, headers=admin.headers, json={"name": "k", "platformId": "plat00000k"})
                    ).json()
            with_key = {"x-api-key": made["key"]}
            # The key authenticates at the gateway (IAM sees an apikey caller for its platform).
            ok = await client.get(K, headers=with_key)
            assert ok.status_code in (200, 403), ok.text
            assert ok.status_code != 401
            assert (await client.delete(f"{K}/{made['id']}", headers=admin.headers)).status_code == 200
            await asyncio.sleep(0.3)
            assert_error(await client.get(K, headers=with_key), 401)
    finally:
        await core.stop()


async def test_key_defaults_to_the_sessions_active_platform(client: httpx.AsyncClient,
                                                            service_headers: dict[str, str]) -> None:
    acct = await _platform_admin(client, service_headers, "act@example.com", "plat00000a")
    await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers,
                      json={"platformId": "plat00000b", "userId": acct.id, "role": "user"})
    await client.post(f"{IAM}/api/nno/session/active-platform", headers=acct.headers,
                      json={"platformId": "plat00000b"})
    made = await client.post(K, headers=acct.headers, json={"name": "default"})
    assert made.status_code == 201 and made.json()["platformId"] == "plat00000b"


async def test_a_key_does_not_act_as_its_creator_in_iam(client: httpx.AsyncClient,
                                                       service_headers: dict[str, str]) -> None:
    from tests.iam.conftest import create_org

    admin = await _platform_admin(client, service_headers, "creator@example.com", "plat00000a")
    org = await create_org(client, admin, "creators-org")
    key = (await client.post(K, headers=admin.headers, json={"name": "k", "platformId": "plat00000a"})).json()
    with_key = {"x-api-key": key["key"]}
    resp = await client.get(f"{IAM}/api/auth/organization/list-members", params={"organizationId": org["id"]},
                            headers=with_key)
    assert_error(resp, 404)
    assert_error(await client.post(f"{IAM}/api/nno/roles", headers=with_key,
                                   json={"orgId": org["id"], "role": "member", "permissions": ["*"]}), 404)
    assert_error(await client.post(K, headers=with_key, json={"name": "k2", "platformId": "plat00000a"}), 403)
