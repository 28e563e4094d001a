"""Better Auth's device authorization plugin (`/api/auth/device/*`) and the organization plugin's
answers, on NNO's IAM through the gateway and on a platform's auth app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from nno.kernel.config import Settings
from tests.iam.conftest import (
    Account,
    Target,
    assert_better_auth_error,
    magic_sign_in,
    platform_auth_client,
    platform_auth_db,
    sign_up,
)

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEV = "/api/auth/device"
ORG = "/api/auth/organization"


async def _code(t: Target, client_id: str = "my-tv-app", **extra: str) -> dict[str, Any]:
    resp = await t.client.post(t.url(f"{DEV}/code"), json={"client_id": client_id, **extra})
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    return dict(resp.json())


async def _poll(t: Target, device_code: str, client_id: str = "my-tv-app") -> httpx.Response:
    return await t.client.post(t.url(f"{DEV}/token"), data={"grant_type": GRANT, "device_code": device_code,
                                                             "client_id": client_id})


def assert_oauth_error(resp: httpx.Response, status: int, error: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error and body["error_description"] and body["message"] and body["code"], body


# ---- device authorization -------------------------------------------------------------------------

async def test_device_flow_at_better_auths_paths(target: Target) -> None:
    """No credential for the code and token requests (public on the gateway); a signed-in user opens
    the code (claiming it), approves it, and the device's token is a session of theirs."""
    me = await target.sign_up("dev@example.com")
    code = await _code(target, scope="openid profile")
    assert {"device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in",
            "interval"} <= set(code)
    assert code["verification_uri"].endswith("/activate")
    shown = await target.client.get(target.url(DEV), params={"user_code": code["user_code"]}, headers=me.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"user_code": code["user_code"], "status": "pending", "client_id": "my-tv-app",
                            "scope": "openid profile"}
    approved = await target.client.post(target.url(f"{DEV}/approve"), headers=me.headers,
                                        json={"userCode": code["user_code"].lower()})
    assert approved.status_code == 200 and approved.json() == {"success": True}, approved.text
    token = await _poll(target, code["device_code"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "openid profile" and body["expires_in"] > 0
    session = await target.get_session(Account(me.id, me.email, body["access_token"]))
    assert session.json()["user"]["id"] == me.id
    assert_oauth_error(await _poll(target, code["device_code"]), 400, "invalid_grant")  # single use
    # Where the code points a person: the sign-in and approval page, served by this same app.
    page = await target.client.get(code["verification_uri_complete"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"], page.text
    assert "name=password" in page.text


async def test_device_pending_deny_and_refusals(target: Target) -> None:
    me = await target.sign_up("den@example.com")
    other = await target.sign_up("oth@example.com")
    code = await _code(target)
    assert_oauth_error(await _poll(target, code["device_code"]), 400, "authorization_pending")
    assert_oauth_error(await _poll(target, code["device_code"], client_id="another-app"), 400, "invalid_grant")
    user_code = code["user_code"]
    # Approving a code nobody opened yet: Better Auth's DEVICE_CODE_NOT_CLAIMED.
    assert_oauth_error(await target.client.post(target.url(f"{DEV}/approve"), headers=me.headers,
                                                json={"userCode": user_code}), 400, "invalid_request")
    assert (await target.client.get(target.url(DEV), params={"user_code": user_code},
                                    headers=me.headers)).status_code == 200
    # Claimed by `me`: nobody else sees its details, approves or denies it.
    assert_oauth_error(await target.client.get(target.url(DEV), params={"user_code": user_code},
                                               headers=other.headers), 403, "access_denied")
    for action in ("approve", "deny"):
        assert_oauth_error(await target.client.post(target.url(f"{DEV}/{action}"), headers=other.headers,
                                                    json={"userCode": user_code}), 403, "access_denied")
    denied = await target.client.post(target.url(f"{DEV}/deny"), headers=me.headers, json={"userCode": user_code})
    assert denied.status_code == 200 and denied.json() == {"success": True}
    # The device polled a moment ago: it is told to slow down before it is told the answer.
    assert_oauth_error(await _poll(target, code["device_code"]), 400, "slow_down")
    assert_oauth_error(await target.client.post(target.url(f"{DEV}/approve"), headers=me.headers,
                                                json={"userCode": user_code}), 400, "invalid_request")


async def test_device_bad_input(target: Target) -> None:
    me = await target.sign_up("bad@example.com")
    for body in ({}, {"client_id": ""}, {"client_id": 5}, {"client_id": "a\x00b"}, {"client_id": "x", "scope": 3}):
        assert_oauth_error(await target.client.post(target.url(f"{DEV}/code"), json=body), 400, "invalid_request")
    assert_oauth_error(await target.client.post(target.url(f"{DEV}/code"), content=b"[1]",
                                                headers={"content-type": "application/json"}), 400, "invalid_request")
    assert_oauth_error(await target.client.post(target.url(f"{DEV}/token"), json={"grant_type": GRANT}), 400,
                       "invalid_request")
    assert_oauth_error(await target.client.post(target.url(f"{DEV}/token"), json={
        "grant_type": "password", "device_code": "x", "client_id": "y"}), 400, "unsupported_grant_type")
    assert_oauth_error(await _poll(target, "no-such-device-code"), 400, "invalid_grant")
    for user_code in ("", "not-a-code", "ABCD-EFGH"):
        assert_oauth_error(await target.client.get(target.url(DEV), params={"user_code": user_code},
                                                   headers=me.headers), 400, "invalid_request")
    for body in ({}, {"userCode": ""}, {"userCode": 7}):
        assert_oauth_error(await target.client.post(target.url(f"{DEV}/approve"), headers=me.headers, json=body),
                           400, "invalid_request")
    # Opening, approving and denying need a session.
    code = await _code(target)
    assert (await target.client.get(target.url(DEV), params={"user_code": code["user_code"]})).status_code == 401
    for action in ("approve", "deny"):
        assert (await target.client.post(target.url(f"{DEV}/{action}"),
                                         json={"userCode": code["user_code"]})).status_code == 401
    async with target.db.session() as s:
        rows = (await s.execute(text("SELECT status, user_id FROM device_codes"))).all()
    assert [tuple(r) for r in rows] == [("pending", None)]  # nothing the refusals touched


async def test_nno_device_approval_respects_a_claim(target: Target) -> None:
    """NNO's own route (`/api/nno/device/approve`, the /activate page's) refuses a code another
    account opened through Better Auth's route."""
    me = await target.sign_up("cl@example.com")
    other = await target.sign_up("cl2@example.com")
    code = await _code(target)
    assert (await target.client.get(target.url(DEV), params={"user_code": code["user_code"]},
                                    headers=me.headers)).status_code == 200
    resp = await target.client.post(target.url("/api/nno/device/approve"), headers=other.headers,
                                    json={"userCode": code["user_code"]})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "ACCESS_DENIED", resp.text
    ok = await target.client.post(target.url("/api/nno/device/approve"), headers=me.headers,
                                  json={"userCode": code["user_code"]})
    assert ok.status_code == 200 and ok.json()["status"] == "approved"


@pytest.fixture
async def signed_in_app(tmp_path: Path, settings: Settings) -> AsyncIterator[tuple[Target, Account]]:
    async with platform_auth_db(settings, tmp_path, "platdvfuzz") as db, \
            platform_auth_client(db, settings, "platdvfuzz") as client:
        target = Target(client, "", db)
        yield target, await target.sign_up("fuzz@example.com")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user_code=st.text(max_size=40), body=st.one_of(
    st.dictionaries(st.sampled_from(["userCode", "client_id", "scope", "x"]),
                    st.one_of(st.text(max_size=20), st.integers(), st.none()), max_size=3),
    st.lists(st.integers(), max_size=2), st.text(max_size=10)))
async def test_device_routes_answer_any_input_with_an_oauth_4xx(signed_in_app: tuple[Target, Account],
                                                                user_code: str, body: Any) -> None:
    """Whatever a person or device sends: a 2xx or an RFC 8628 4xx, never a 5xx, and no code is
    approved or denied by it."""
    target, me = signed_in_app
    answers = [await target.client.get(target.url(DEV), params={"user_code": user_code}, headers=me.headers)]
    for action in ("approve", "deny"):
        answers.append(await target.client.post(target.url(f"{DEV}/{action}"), headers=me.headers, json=body))
    answers.append(await target.client.post(target.url(f"{DEV}/code"), json=body))
    for resp in answers:
        assert resp.status_code < 500, resp.text
        if resp.status_code >= 400:
            assert isinstance(resp.json()["error"], str) and resp.json()["error_description"], resp.text
    async with target.db.session() as s:
        decided = (await s.execute(text("SELECT count(*) FROM device_codes WHERE status != 'pending'"))).scalar_one()
    assert decided == 0


# ---- organization ---------------------------------------------------------------------------------

async def _org(t: Target, owner: Account, slug: str) -> str:
    resp = await t.client.post(t.url(f"{ORG}/create"), headers=owner.headers, json={"name": slug.title(), "slug": slug})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def test_active_member_role_and_get_organization(target: Target) -> None:
    owner = await target.sign_up("own@example.com")
    member = await target.sign_up("mem@example.com")
    outsider = await target.sign_up("out@example.com")
    role_url, get_url, full_url = (target.url(f"{ORG}/{p}") for p in (
        "get-active-member-role", "get-organization", "get-full-organization"))
    # Nothing named and nothing active: Better Auth's `null`, or NO_ACTIVE_ORGANIZATION for the role.
    for url in (get_url, full_url):
        none = await target.client.get(url, headers=owner.headers)
        assert none.status_code == 200 and none.json() is None, none.text
    assert_better_auth_error(await target.client.get(role_url, headers=owner.headers), 400, "NO_ACTIVE_ORGANIZATION")
    org_id = await _org(target, owner, "rolco")  # becomes the owner's active organization
    added = await target.client.post(target.url(f"{ORG}/add-member"), headers=owner.headers,
                                     json={"organizationId": org_id, "userId": member.id, "role": "admin"})
    assert added.status_code == 201, added.text
    assert (await target.client.get(role_url, headers=owner.headers)).json() == {"role": "owner"}
    of_member = await target.client.get(role_url, headers=owner.headers, params={"userId": member.id})
    assert of_member.json() == {"role": "admin"}
    by_slug = await target.client.get(role_url, headers=member.headers, params={"organizationSlug": "rolco"})
    assert by_slug.json() == {"role": "admin"}
    got = await target.client.get(get_url, headers=owner.headers)
    assert got.status_code == 200 and got.json()["id"] == org_id and "members" not in got.json()
    assert isinstance(got.json()["createdAt"], str)
    assert (await target.client.get(get_url, headers=member.headers,
                                    params={"organizationId": org_id})).json()["slug"] == "rolco"
    # An outsider learns nothing of the organization or of its members' roles.
    assert_better_auth_error(await target.client.get(role_url, headers=outsider.headers,
                                                     params={"organizationId": org_id}),
                             403, "YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION")
    assert_better_auth_error(await target.client.get(role_url, headers=outsider.headers,
                                                     params={"organizationId": org_id, "userId": owner.id}),
                             403, "YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION")
    for url in (get_url, full_url):
        refused = await target.client.get(url, headers=outsider.headers, params={"organizationId": org_id})
        assert refused.status_code in (403, 404) and "rolco" not in refused.text
    assert_better_auth_error(await target.client.get(role_url, headers=owner.headers,
                                                     params={"organizationSlug": "nope"}), 404,
                             "ORGANIZATION_NOT_FOUND")
    assert (await target.client.get(role_url)).status_code == 401


async def test_list_members_pages_as_better_auth_does(target: Target) -> None:
    owner = await target.sign_up("pg@example.com")
    org_id = await _org(target, owner, "pageco")
    others = [await target.sign_up(f"pg{i}@example.com") for i in range(3)]
    for other in others:
        assert (await target.client.post(target.url(f"{ORG}/add-member"), headers=owner.headers, json={
            "organizationId": org_id, "userId": other.id, "role": "member"})).status_code == 201
    url = target.url(f"{ORG}/list-members")
    everyone = (await target.client.get(url, headers=owner.headers, params={"organizationSlug": "pageco"})).json()
    assert everyone["total"] == 4 and [m["userId"] for m in everyone["members"]] == [owner.id, *(o.id for o in others)]
    page = (await target.client.get(url, headers=owner.headers, params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 4 and page["members"] == everyone["members"][1:3]
    for bad in ({"limit": 0}, {"offset": -1}, {"limit": "x"}):
        assert_better_auth_error(await target.client.get(url, headers=owner.headers, params=bad), 400,
                                 "VALIDATION_ERROR")


async def test_leave_cancel_and_reject_answer_better_auths_shapes(target: Target) -> None:
    owner = await target.sign_up("lo@example.com")
    org_id = await _org(target, owner, "leaveco")
    guest = await magic_sign_in(target.client, target.db, "guest@example.com", prefix=target.prefix)
    invite_url = target.url(f"{ORG}/invite-member")

    async def invite() -> str:
        resp = await target.client.post(invite_url, headers=owner.headers,
                                        json={"organizationId": org_id, "email": "guest@example.com", "role": "member"})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    canceled = await target.client.post(target.url(f"{ORG}/cancel-invitation"), headers=owner.headers,
                                        json={"invitationId": await invite()})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text
    assert canceled.json()["email"] == "guest@example.com" and isinstance(canceled.json()["expiresAt"], str)
    rejected = await target.client.post(target.url(f"{ORG}/reject-invitation"), headers=guest.headers,
                                        json={"invitationId": await invite()})
    assert rejected.json()["invitation"]["status"] == "rejected" and rejected.json()["member"] is None
    accepted = await target.client.post(target.url(f"{ORG}/accept-invitation"), headers=guest.headers,
                                        json={"invitationId": await invite()})
    assert accepted.status_code == 200, accepted.text
    assert (await target.client.post(target.url(f"{ORG}/set-active"), headers=guest.headers,
                                     json={"organizationId": org_id})).status_code == 200
    left = await target.client.post(target.url(f"{ORG}/leave"), headers=guest.headers,
                                    json={"organizationId": org_id})
    assert left.status_code == 200, left.text
    assert left.json()["userId"] == guest.id and left.json()["role"] == "member"
    # The session that had it active has no active organization after.
    assert (await target.get_session(guest)).json()["session"]["activeOrganizationId"] is None
    assert_better_auth_error(await target.client.post(target.url(f"{ORG}/leave"), headers=owner.headers,
                                                      json={"organizationId": org_id}), 400,
                             "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER")


# ---- another platform -----------------------------------------------------------------------------

async def test_another_platforms_session_and_codes_reach_nothing(tmp_path: Path, settings: Settings) -> None:
    async with platform_auth_db(settings, tmp_path, "platdvaaaa") as db_a, \
            platform_auth_db(settings, tmp_path, "platdvbbbb") as db_b:
        async with platform_auth_client(db_a, settings, "platdvaaaa") as a, \
                platform_auth_client(db_b, settings, "platdvbbbb") as b:
            ta, tb = Target(a, "", db_a), Target(b, "", db_b)
            alice = await sign_up(a, "alice@example.com", prefix="")
            bob = await sign_up(b, "bob@example.com", prefix="")
            org_id = await _org(ta, alice, "alico")
            code = await _code(ta)
            # A's session means nothing on B.
            for method, path, params, body in (
                    ("GET", DEV, {"user_code": code["user_code"]}, None),
                    ("POST", f"{DEV}/approve", None, {"userCode": code["user_code"]}),
                    ("POST", f"{DEV}/deny", None, {"userCode": code["user_code"]}),
                    ("GET", f"{ORG}/get-active-member-role", {"organizationId": org_id}, None),
                    ("GET", f"{ORG}/get-organization", {"organizationId": org_id}, None),
                    ("POST", f"{ORG}/leave", None, {"organizationId": org_id})):
                resp = await b.request(method, path, params=params, json=body, headers=alice.headers)
                assert resp.status_code == 401, (path, resp.text)
            # A's codes are unknown to B, whoever asks.
            assert_oauth_error(await b.get(DEV, params={"user_code": code["user_code"]}, headers=bob.headers),
                               400, "invalid_request")
            assert_oauth_error(await _poll(tb, code["device_code"]), 400, "invalid_grant")
            refused = await b.get(f"{ORG}/get-organization", params={"organizationId": org_id}, headers=bob.headers)
            assert refused.status_code in (403, 404) and "alico" not in refused.text
            # And A's code is still A's to approve.
            assert (await a.get(DEV, params={"user_code": code["user_code"]}, headers=alice.headers)).json()[
                "status"] == "pending"
