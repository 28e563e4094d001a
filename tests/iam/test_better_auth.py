"""Better Auth's wire protocol on `/api/auth/*`, on both targets a Better Auth client talks to: NNO's
IAM through the gateway and a platform's own auth app (`create_auth_app`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nno.iam.better_auth import EPOCH, TIMESTAMP_KEYS, compatible_error, iso_ms, with_iso_timestamps
from nno.kernel.config import Settings
from tests.iam.conftest import (
    PASSWORD,
    Account,
    Target,
    assert_better_auth_error,
    assert_no_session,
    platform_auth_client,
    platform_auth_db,
    sign_up,
)

# ---- errors ---------------------------------------------------------------------------------------

async def test_failed_sign_in_is_better_auths_code(target: Target) -> None:
    await target.sign_up("ada@example.com")
    wrong = await target.sign_in("ada@example.com", "wrong-horse-1")
    unknown = await target.sign_in("nobody@example.com")
    for resp in (wrong, unknown):
        assert_better_auth_error(resp, 401, "INVALID_EMAIL_OR_PASSWORD")
    # No enumeration: an unknown address reads exactly like a wrong password.
    assert wrong.json()["message"] == unknown.json()["message"]


async def test_every_error_on_the_surface_carries_the_top_level_code(target: Target) -> None:
    acct = await target.sign_up("bo@example.com")
    bad_body = await target.client.post(target.url("/api/auth/sign-in/email"), json={"email": "x"})
    assert_better_auth_error(bad_body, 400, "VALIDATION_ERROR")
    no_route = await target.client.get(target.url("/api/auth/no-such-route"), headers=acct.headers)
    assert_better_auth_error(no_route, 404, "NOT_FOUND")
    taken = await target.client.post(target.url("/api/auth/sign-up/email"),
                                     json={"email": "bo@example.com", "password": PASSWORD, "name": "B"})
    assert_better_auth_error(taken, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    wrong_pw = await target.client.post(target.url("/api/auth/change-password"), headers=acct.headers,
                                        json={"currentPassword": "nope-nope-1", "newPassword": "new-pass-2x"})
    assert_better_auth_error(wrong_pw, 400, "INVALID_PASSWORD")


async def test_a_route_needing_a_session_says_so_in_better_auths_shape(target: Target) -> None:
    """Through the gateway this 401 is the gateway's own answer: it carries the same shape."""
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        resp = await target.client.get(target.url("/api/auth/list-sessions"), headers=headers)
        assert_better_auth_error(resp, 401, "UNAUTHORIZED")


async def test_nno_routes_keep_the_plain_envelope(target: Target) -> None:
    resp = await target.client.get(target.url("/api/nno/session"), headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401 and set(resp.json()) == {"error"}, resp.text


@given(code=st.text(min_size=1, max_size=40), message=st.text(max_size=80),
       status=st.integers(min_value=400, max_value=599),
       path=st.sampled_from(["/api/auth/sign-in/email", "/api/auth/change-password", "/api/auth/x",
                             "/api/auth/organization/delete"]))
def test_compatible_error_keeps_the_envelope_and_agrees_with_it(code: str, message: str, status: int,
                                                                path: str) -> None:
    body = {"error": {"code": code, "message": message, "requestId": "r1"}}
    new_status, out = compatible_error(path, status, body)
    assert out["code"] == out["error"]["code"] and out["message"] == message == out["error"]["message"]
    assert out["error"]["requestId"] == "r1" and 400 <= new_status < 600
    if out["code"] == code:
        assert new_status == status  # an untranslated code keeps its status
    assert body == {"error": {"code": code, "message": message, "requestId": "r1"}}  # not mutated


@given(body=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers()),
                      st.dictionaries(st.sampled_from(["code", "message", "x"]), st.text())))
def test_compatible_error_leaves_other_bodies_alone(body: Any) -> None:
    assert compatible_error("/api/auth/x", 400, body) == (400, body)


# ---- get-session ----------------------------------------------------------------------------------

async def test_get_session_is_null_without_a_session_and_carries_its_token(target: Target) -> None:
    assert_no_session(await target.get_session(None))
    assert_no_session(await target.client.get(target.url("/api/auth/get-session"),
                                              headers={"Authorization": "Bearer not-a-token"}))
    acct = await target.sign_up("cy@example.com")
    resp = await target.get_session(acct)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["session"]["token"] == acct.token and body["session"]["userId"] == acct.id
    assert body["user"]["email"] == "cy@example.com"
    # The cookie works as the bearer does.
    by_cookie = await target.client.get(target.url("/api/auth/get-session"), cookies={"nno_session": acct.token})
    target.client.cookies.clear()
    assert by_cookie.json()["session"]["token"] == acct.token
    assert (await target.client.post(target.url("/api/auth/sign-out"), headers=acct.headers)).status_code == 200
    assert_no_session(await target.get_session(acct))


# ---- update-user ----------------------------------------------------------------------------------

async def test_update_user(target: Target) -> None:
    acct = await target.sign_up("di@example.com")
    url = target.url("/api/auth/update-user")
    resp = await target.client.post(url, headers=acct.headers, json={"name": "Di Renamed", "image": "https://x/i.png"})
    assert resp.status_code == 200 and resp.json() == {"status": True}, resp.text
    user = (await target.get_session(acct)).json()["user"]
    assert user["name"] == "Di Renamed" and user["image"] == "https://x/i.png"
    # The address changes only through a flow that proves the new one.
    assert_better_auth_error(await target.client.post(url, headers=acct.headers, json={"email": "e@example.com"}),
                             400, "EMAIL_CAN_NOT_BE_UPDATED")
    assert_better_auth_error(await target.client.post(url, headers=acct.headers, json={}), 400,
                             "NO_FIELDS_TO_UPDATE")
    assert_better_auth_error(await target.client.post(url, headers=acct.headers, json={"name": ""}), 400,
                             "VALIDATION_ERROR")
    after = (await target.get_session(acct)).json()["user"]
    assert after["email"] == "di@example.com" and after["name"] == "Di Renamed"
    assert (await target.client.post(url, json={"name": "Anon"})).status_code == 401


# ---- sessions -------------------------------------------------------------------------------------

async def test_list_sessions_lists_only_mine(target: Target) -> None:
    me = await target.sign_up("ed@example.com")
    second = await target.second_session("ed@example.com")
    other = await target.sign_up("fay@example.com")
    resp = await target.client.get(target.url("/api/auth/list-sessions"), headers=me.headers)
    assert resp.status_code == 200, resp.text
    listed = resp.json()
    assert isinstance(listed, list) and len(listed) == 2
    assert {s["userId"] for s in listed} == {me.id}
    current = [s for s in listed if s["token"] == me.token]
    assert len(current) == 1
    # Only digests are stored: another session's `token` is its id (a handle), never its credential.
    others = [s for s in listed if s["token"] != me.token]
    assert len(others) == 1 and others[0]["token"] == others[0]["id"] and second.token not in str(listed)
    assert other.token not in str(listed)
    assert (await target.client.get(target.url("/api/auth/list-sessions"))).status_code == 401


async def test_revoke_session_by_token_or_handle(target: Target) -> None:
    me = await target.sign_up("gus@example.com")
    by_token = await target.second_session("gus@example.com")
    by_handle = await target.second_session("gus@example.com")
    handle = (await target.get_session(by_handle)).json()["session"]["id"]
    url = target.url("/api/auth/revoke-session")
    for token in (by_token.token, handle):
        resp = await target.client.post(url, headers=me.headers, json={"token": token})
        assert resp.status_code == 200 and resp.json() == {"status": True}, resp.text
    assert_no_session(await target.get_session(by_token))
    assert_no_session(await target.get_session(by_handle))
    assert (await target.get_session(me)).json() is not None
    assert_better_auth_error(await target.client.post(url, headers=me.headers, json={}), 400, "VALIDATION_ERROR")


async def test_another_users_session_cannot_be_revoked(target: Target) -> None:
    me = await target.sign_up("hal@example.com")
    victim = await target.sign_up("ivy@example.com")
    victim_id = (await target.get_session(victim)).json()["session"]["id"]
    url = target.url("/api/auth/revoke-session")
    for token in (victim.token, victim_id):
        # Answered as for any token (as Better Auth does), so it tells nothing of others' sessions.
        resp = await target.client.post(url, headers=me.headers, json={"token": token})
        assert resp.status_code == 200 and resp.json() == {"status": True}
    assert (await target.get_session(victim)).json()["session"]["token"] == victim.token
    assert (await target.get_session(me)).json() is not None
    # Nor by revoking "all my sessions".
    assert (await target.client.post(target.url("/api/auth/revoke-sessions"), headers=me.headers)).json() == {
        "status": True}
    assert_no_session(await target.get_session(me))
    assert (await target.get_session(victim)).json()["session"]["token"] == victim.token


async def test_revoke_sessions_and_revoke_other_sessions(target: Target) -> None:
    me = await target.sign_up("jo@example.com")
    second = await target.second_session("jo@example.com")
    third = await target.second_session("jo@example.com")
    resp = await target.client.post(target.url("/api/auth/revoke-other-sessions"), headers=me.headers)
    assert resp.status_code == 200 and resp.json()["status"] is True
    assert_no_session(await target.get_session(second))
    assert_no_session(await target.get_session(third))
    assert (await target.get_session(me)).json() is not None
    fourth = await target.second_session("jo@example.com")
    resp = await target.client.post(target.url("/api/auth/revoke-sessions"), headers=me.headers)
    assert resp.status_code == 200 and resp.json() == {"status": True}
    for acct in (me, fourth):
        assert_no_session(await target.get_session(acct))
    assert (await target.client.post(target.url("/api/auth/revoke-sessions"))).status_code == 401


# ---- organization ---------------------------------------------------------------------------------

async def test_get_active_member(target: Target) -> None:
    owner = await target.sign_up("kim@example.com")
    outsider = await target.sign_up("lou@example.com")
    url = target.url("/api/auth/organization/get-active-member")
    assert_better_auth_error(await target.client.get(url, headers=owner.headers), 400, "NO_ACTIVE_ORGANIZATION")
    created = await target.client.post(target.url("/api/auth/organization/create"), headers=owner.headers,
                                       json={"name": "Kim Co", "slug": "kim-co"})
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    assert (await target.client.post(target.url("/api/auth/organization/set-active"), headers=owner.headers,
                                     json={"organizationId": org_id})).status_code == 200
    resp = await target.client.get(url, headers=owner.headers)
    assert resp.status_code == 200, resp.text
    member = resp.json()
    assert member["organizationId"] == org_id and member["userId"] == owner.id and member["role"] == "owner"
    assert member["user"]["email"] == "kim@example.com"
    # An outsider cannot make someone else's organization active, so has no active member there.
    assert (await target.client.post(target.url("/api/auth/organization/set-active"), headers=outsider.headers,
                                     json={"organizationId": org_id})).status_code >= 400
    assert_better_auth_error(await target.client.get(url, headers=outsider.headers), 400,
                             "NO_ACTIVE_ORGANIZATION")
    assert (await target.client.get(url)).status_code == 401


async def test_check_slug(target: Target) -> None:
    owner = await target.sign_up("max@example.com")
    url = target.url("/api/auth/organization/check-slug")
    free = await target.client.post(url, headers=owner.headers, json={"slug": "max-co"})
    assert free.status_code == 200 and free.json() == {"status": True}, free.text
    assert (await target.client.post(target.url("/api/auth/organization/create"), headers=owner.headers,
                                     json={"name": "Max Co", "slug": "max-co"})).status_code == 201
    assert_better_auth_error(await target.client.post(url, headers=owner.headers, json={"slug": "max-co"}), 400,
                             "ORGANIZATION_SLUG_ALREADY_TAKEN")
    assert_better_auth_error(await target.client.post(url, headers=owner.headers, json={"slug": "Not A Slug"}),
                             400, "VALIDATION_ERROR")
    assert (await target.client.post(url, json={"slug": "max-co"})).status_code == 401


# ---- another platform -----------------------------------------------------------------------------

async def test_another_platforms_session_reaches_none_of_the_routes(tmp_path: Path, settings: Settings) -> None:
    """A session of platform A's auth app is unknown to platform B's: every new route treats it as
    no session at all."""
    async with platform_auth_db(settings, tmp_path, "platbaaaaa") as db_a, \
            platform_auth_db(settings, tmp_path, "platbbbbbb") as db_b:
        async with platform_auth_client(db_a, settings, "platbaaaaa") as a, \
                platform_auth_client(db_b, settings, "platbbbbbb") as b:
            acct = await sign_up(a, "nia@example.com", prefix="")
            created = await a.post("/api/auth/organization/create", headers=acct.headers,
                                   json={"name": "Nia", "slug": "nia"})
            assert created.status_code == 201
            assert_no_session(await b.get("/api/auth/get-session", headers=acct.headers))
            for method, path, body in (
                    ("GET", "/api/auth/list-sessions", None),
                    ("POST", "/api/auth/update-user", {"name": "X"}),
                    ("POST", "/api/auth/revoke-session", {"token": acct.token}),
                    ("POST", "/api/auth/revoke-sessions", None),
                    ("GET", "/api/auth/organization/get-active-member", None),
                    ("POST", "/api/auth/organization/check-slug", {"slug": "nia"})):
                resp = await b.request(method, path, headers=acct.headers, json=body)
                assert_better_auth_error(resp, 401, "UNAUTHORIZED")
            assert (await a.get("/api/auth/get-session", headers=acct.headers)).json()["user"]["name"] != "X"
            assert (await a.get("/api/auth/get-session", headers=acct.headers)).json() is not None


async def test_change_password_answers_token_and_user(target: Target) -> None:
    me = await target.sign_up("oz@example.com")
    other = await target.second_session("oz@example.com")
    url = target.url("/api/auth/change-password")
    kept = await target.client.post(url, headers=me.headers,
                                    json={"currentPassword": PASSWORD, "newPassword": "second-horse-2"})
    assert kept.status_code == 200, kept.text
    assert kept.json()["token"] is None and kept.json()["user"]["id"] == me.id
    assert (await target.get_session(other)).json() is not None
    revoked = await target.client.post(url, headers=me.headers, json={
        "currentPassword": "second-horse-2", "newPassword": "third-horse-3", "revokeOtherSessions": True})
    assert revoked.status_code == 200, revoked.text
    body = revoked.json()
    assert body["user"]["email"] == "oz@example.com" and "passwordHash" not in str(body)
    # The token to go on with is a live session of the account; the others are gone.
    assert (await target.get_session(Account(me.id, me.email, body["token"]))).json()["user"]["id"] == me.id
    assert_no_session(await target.get_session(other))
    assert (await target.sign_in("oz@example.com", "third-horse-3")).status_code == 200


# ---- timestamps -----------------------------------------------------------------------------------

def ms_of(iso: str) -> int:
    assert iso.endswith("Z"), iso
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(milliseconds=1)


async def test_timestamps_are_iso_on_the_surface_and_ms_elsewhere(target: Target) -> None:
    me = await target.sign_up("pia@example.com")
    signed_in = (await target.sign_in("pia@example.com")).json()
    got = (await target.get_session(me)).json()
    for obj in (got["session"], got["user"], signed_in["session"], signed_in["user"]):
        assert isinstance(obj["createdAt"], str) and ms_of(obj["createdAt"]) > 0
    assert ms_of(got["session"]["expiresAt"]) > ms_of(got["session"]["createdAt"])
    listed = (await target.client.get(target.url("/api/auth/list-sessions"), headers=me.headers)).json()
    assert all(isinstance(s["expiresAt"], str) for s in listed)
    org = (await target.client.post(target.url("/api/auth/organization/create"), headers=me.headers,
                                    json={"name": "Pia", "slug": "pia"})).json()
    assert isinstance(org["createdAt"], str)
    # NNO's own session view keeps Unix ms, and names the same instant.
    nno = (await target.client.get(target.url("/api/nno/session"), headers=me.headers)).json()
    assert isinstance(nno["expiresAt"], int)
    assert ms_of((await target.get_session(me)).json()["session"]["expiresAt"]) == nno["expiresAt"]


@given(ms=st.integers(min_value=0, max_value=253402300799999))
def test_iso_ms_is_javascripts_iso_string_of_the_same_instant(ms: int) -> None:
    iso = iso_ms(ms)
    assert len(iso) == 24 and iso[10] == "T" and iso.endswith("Z")
    assert ms_of(iso) == ms


@given(value=st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=0, max_value=2**41), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["createdAt", "expiresAt", "id", "n"]), inner,
                                            max_size=4)),
    max_leaves=12))
def test_with_iso_timestamps_converts_only_timestamp_integers(value: Any) -> None:
    def check(before: Any, after: Any, key: str | None) -> None:
        if key in TIMESTAMP_KEYS and isinstance(before, int) and not isinstance(before, bool):
            assert after == iso_ms(before)
        elif isinstance(before, dict):
            assert isinstance(after, dict) and list(after) == list(before)
            for k in before:
                check(before[k], after[k], k)
        elif isinstance(before, list):
            assert isinstance(after, list) and len(after) == len(before)
            for b, a in zip(before, after, strict=True):
                check(b, a, None)
        else:
            assert after == before and type(after) is type(before)

    check(value, with_iso_timestamps(value), None)


async def test_sign_in_answers_the_bearer_plugins_header(target: Target) -> None:
    up = await target.client.post(target.url("/api/auth/sign-up/email"),
                                  json={"email": "quin@example.com", "password": PASSWORD, "name": "Q"})
    target.client.cookies.clear()
    signed_in = await target.sign_in("quin@example.com")
    for resp in (up, signed_in):
        assert resp.status_code == 200, resp.text
        assert resp.headers["set-auth-token"] == resp.json()["token"]
        assert "set-auth-token" in resp.headers["access-control-expose-headers"].lower()
    me = Account(signed_in.json()["user"]["id"], "quin@example.com", signed_in.headers["set-auth-token"])
    got = await target.get_session(me)
    assert got.json()["user"]["email"] == "quin@example.com" and "set-auth-token" not in got.headers
    assert "set-auth-token" not in (await target.sign_in("quin@example.com", "wrong-horse-1")).headers


async def test_organization_create_and_delete_answer_the_organization(target: Target) -> None:
    owner = await target.sign_up("rae@example.com")
    other = await target.sign_up("sol@example.com")
    created = await target.client.post(target.url("/api/auth/organization/create"), headers=owner.headers,
                                       json={"name": "Rae Co", "slug": "rae-co"})
    assert created.status_code == 201, created.text
    org = created.json()
    assert org["slug"] == "rae-co" and [(m["userId"], m["role"]) for m in org["members"]] == [(owner.id, "owner")]
    url = target.url("/api/auth/organization/delete")
    refused = await target.client.post(url, headers=other.headers, json={"organizationId": org["id"]})
    assert refused.status_code in (403, 404) and "slug" not in refused.json()
    deleted = await target.client.post(url, headers=owner.headers, json={"organizationId": org["id"]})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["id"] == org["id"] and deleted.json()["slug"] == "rae-co"
    assert (await target.client.post(target.url("/api/auth/organization/check-slug"), headers=owner.headers,
                                     json={"slug": "rae-co"})).json() == {"status": True}
