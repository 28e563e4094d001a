"""Session management, the gateway's session endpoint, platform membership, revocation at the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from nno.core import Core
from nno.kernel.config import Settings
from tests.conftest import BASE_URL
from tests.iam.conftest import IAM, assert_error, assert_no_session, rows, sign_in, sign_up


async def test_nno_session_shape(client: httpx.AsyncClient) -> None:
    acct = await sign_up(client, "shape@example.com", name="Shape")
    resp = await client.get(f"{IAM}/api/nno/session", headers=acct.headers)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"userId", "email", "name", "role", "platformId", "activeOrganizationId", "expiresAt",
                         "sessionId", "permissions"}
    assert body["userId"] == acct.id and body["role"] == "user" and body["platformId"] is None
    assert_error(await client.get(f"{IAM}/api/nno/session"), 401)


async def test_list_and_revoke_sessions(client: httpx.AsyncClient, core: Core) -> None:
    a = await sign_up(client, "multi@example.com")
    b = (await sign_in(client, "multi@example.com")).json()["token"]
    c = (await sign_in(client, "multi@example.com")).json()["token"]
    other = await sign_up(client, "someone@example.com")
    listed = (await client.get(f"{IAM}/api/sessions", headers=a.headers)).json()["data"]
    assert len(listed) == 3 and sum(s["current"] for s in listed) == 1
    assert all("token" not in s and "tokenHash" not in s for s in listed)
    current = next(s for s in listed if s["current"])
    others = [s["id"] for s in listed if not s["current"]]
    # Someone else's session id is unknown to me.
    theirs = (await client.get(f"{IAM}/api/sessions", headers=other.headers)).json()["data"][0]["id"]
    assert_error(await client.delete(f"{IAM}/api/sessions/{theirs}", headers=a.headers), 404, "SESSION_NOT_FOUND")
    assert_error(await client.delete(f"{IAM}/api/sessions/nosuchid00", headers=a.headers), 404)
    resp = await client.delete(f"{IAM}/api/sessions/{others[0]}", headers=a.headers)
    assert resp.status_code == 200
    resp = await client.post(f"{IAM}/api/sessions/revoke-others", headers=a.headers)
    assert resp.json()["revoked"] == 1
    left = await rows(core, "SELECT id FROM sessions WHERE user_id = :u", u=a.id)
    assert [r[0] for r in left] == [current["id"]]
    for token in (b, c):
        assert_no_session(await client.get(f"{IAM}/api/auth/get-session",
                                           headers={"Authorization": f"Bearer {token}"}))
    assert (await client.get(f"{IAM}/api/sessions", headers=other.headers)).status_code == 200


async def test_revoked_session_is_refused_by_gateway_within_ttl(make_settings: Callable[..., Settings]) -> None:
    core = Core(make_settings(auth_cache_ttl_s=0.2), services=["iam"], with_edge=False)
    await core.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=BASE_URL) as client:
            a = await sign_up(client, "ttl@example.com")
            second = (await sign_in(client, "ttl@example.com")).json()["token"]
            h2 = {"Authorization": f"Bearer {second}"}
            # An authenticated (non-session) route, so the gateway's cache decides.
            assert (await client.get(f"{IAM}/api/auth/profile", headers=h2)).status_code == 200
            await client.post(f"{IAM}/api/sessions/revoke-others", headers=a.headers)
            await asyncio.sleep(0.3)
            assert_error(await client.get(f"{IAM}/api/auth/profile", headers=h2), 401)
            await client.post(f"{IAM}/api/auth/sign-out", headers=a.headers)
            await asyncio.sleep(0.3)
            assert_error(await client.get(f"{IAM}/api/auth/profile", headers=a.headers), 401)
    finally:
        await core.stop()


async def test_platform_members_and_active_platform(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                    core: Core) -> None:
    owner = await sign_up(client, "owner@example.com")
    user = await sign_up(client, "user@example.com")
    outsider = await sign_up(client, "outsider@example.com")
    url = f"{IAM}/api/nno/platform-members"
    r = await client.post(url, headers=service_headers,
                          json={"platformId": "plat000001", "userId": owner.id, "role": "platform-admin"})
    assert r.status_code == 201 and r.json()["role"] == "platform-admin"
    again = await client.post(url, headers=service_headers,
                              json={"platformId": "plat000001", "userId": owner.id, "role": "platform-admin"})
    assert again.status_code == 200
    for pid in ("plat000001", "plat000002"):
        r = await client.post(url, headers=service_headers, json={"platformId": pid, "userId": user.id,
                                                                  "role": "user"})
        assert r.status_code == 201
    # Only services write membership.
    assert_error(await client.post(url, headers=owner.headers,
                                   json={"platformId": "plat000001", "userId": outsider.id, "role": "user"}), 403)
    assert_error(await client.post(url, headers=service_headers,
                                   json={"platformId": "plat000001", "userId": "nosuchuser", "role": "user"}),
                 404, "USER_NOT_FOUND")
    assert_error(await client.post(url, headers=service_headers,
                                   json={"platformId": "plat000001", "userId": user.id, "role": "root"}), 400)
    listed = (await client.get(url, params={"platformId": "plat000001"}, headers=service_headers)).json()["data"]
    assert {(m["userId"], m["role"]) for m in listed} == {(owner.id, "platform-admin"), (user.id, "user")}
    # A platform admin sees the platform's members; a plain member sees only their own memberships.
    assert (await client.get(url, params={"platformId": "plat000001"}, headers=owner.headers)).status_code == 200
    assert_error(await client.get(url, params={"platformId": "plat000001"}, headers=user.headers), 403)
    mine = (await client.get(url, params={"userId": user.id}, headers=user.headers)).json()["data"]
    assert [m["platformId"] for m in mine] == ["plat000001", "plat000002"]
    assert_error(await client.get(url, params={"userId": user.id}, headers=outsider.headers), 403)
    assert_error(await client.get(url, headers=service_headers), 400, "VALIDATION_ERROR")

    owner_session = (await client.get(f"{IAM}/api/nno/session", headers=owner.headers)).json()
    assert owner_session["role"] == "platform-admin" and owner_session["platformId"] == "plat000001"
    user_session = (await client.get(f"{IAM}/api/nno/session", headers=user.headers)).json()
    assert user_session["role"] == "user" and user_session["platformId"] == "plat000001"
    switched = await client.post(f"{IAM}/api/nno/session/active-platform", headers=user.headers,
                                 json={"platformId": "plat000002"})
    assert switched.status_code == 200 and switched.json()["platformId"] == "plat000002"
    assert_error(await client.post(f"{IAM}/api/nno/session/active-platform", headers=outsider.headers,
                                   json={"platformId": "plat000002"}), 403, "NOT_A_PLATFORM_MEMBER")
    assert (await rows(core, "SELECT active_platform_id FROM sessions WHERE user_id = :u", u=outsider.id)
            )[0][0] is None


async def test_validate_session_for_services(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    acct = await sign_up(client, "v@example.com")
    ok = await client.post(f"{IAM}/api/validate-session", headers=service_headers, json={"token": acct.token})
    assert ok.status_code == 200 and ok.json()["userId"] == acct.id
    assert_error(await client.post(f"{IAM}/api/validate-session", headers=service_headers,
                                   json={"token": "bogus"}), 401)
    assert_error(await client.post(f"{IAM}/api/validate-session", headers=acct.headers,
                                   json={"token": acct.token}), 403)
