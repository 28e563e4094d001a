"""OAuth device authorization grant (RFC 8628), end to end through the /activate page."""

from __future__ import annotations

import re

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from nno.core import Core
from nno.iam.device import USER_CODE_ALPHABET, format_user_code, new_user_code, normalize_user_code
from nno.kernel.ids import token_hash
from tests.iam.conftest import IAM, PASSWORD, assert_error, rows, sign_up

D = f"{IAM}/api/nno/device"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def _code(client: httpx.AsyncClient) -> dict[str, object]:
    resp = await client.post(f"{D}/code", data={"client_id": "nno-cli"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def _poll(client: httpx.AsyncClient, device_code: object) -> httpx.Response:
    return await client.post(f"{D}/token", data={"grant_type": GRANT, "device_code": device_code,
                                                  "client_id": "nno-cli"})


def _csrf(page: str) -> str:
    match = re.search(r"name=csrf_token value='([^']+)'", page)
    assert match, page
    return match.group(1)


async def test_code_response_shape(client: httpx.AsyncClient, core: Core) -> None:
    body = await _code(client)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", str(body["user_code"]))
    assert body["verification_uri"] == f"{core.settings.public_url}/api/v1/iam/activate"
    assert body["verification_uri_complete"] == f"{body['verification_uri']}?user_code={body['user_code']}"
    assert body["expires_in"] == 1800 and body["interval"] == 5
    stored = await rows(core, "SELECT device_code_hash, user_code FROM device_codes")
    assert stored == [(token_hash(str(body["device_code"])), str(body["user_code"]).replace("-", ""))]


async def test_end_to_end_through_the_activate_page(client: httpx.AsyncClient, core: Core) -> None:
    await sign_up(client, "cli@example.com")
    code = await _code(client)
    page_url = str(code["verification_uri_complete"]).replace(core.settings.public_url, "")
    # Not signed in: the page offers a sign-in form.
    page = await client.get(page_url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "name=password" in page.text
    signed = await client.post(f"{IAM}/activate", data={
        "action": "signin", "csrf_token": _csrf(page.text), "email": "cli@example.com", "password": PASSWORD,
        "user_code": code["user_code"]})
    assert signed.status_code == 200, signed.text
    assert "nno_session=" in signed.headers["set-cookie"] and "HttpOnly" in signed.headers["set-cookie"]
    assert "nno-cli" in signed.text  # the page names the application asking
    # Signed in (cookie): GET the page, read the session-bound CSRF token, approve.
    page = await client.get(page_url)
    assert "Approve" in page.text
    approved = await client.post(f"{IAM}/activate", data={
        "action": "approve", "csrf_token": _csrf(page.text), "user_code": str(code["user_code"]).lower()})
    assert approved.status_code == 200 and "approved" in approved.text.lower()
    client.cookies.clear()
    token = await _poll(client, code["device_code"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 6 * 24 * 3600
    me = await client.get(f"{IAM}/api/nno/session", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == "cli@example.com"
    # The device code is single-use.
    again = await _poll(client, code["device_code"])
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant",
                                                         "error_description": again.json()["error_description"]}
    actions = {r[0] for r in await rows(core, "SELECT action FROM audit_log WHERE action LIKE 'device.%'")}
    assert {"device.code", "device.approve"} <= actions


async def test_pending_slow_down_and_deny(client: httpx.AsyncClient, core: Core) -> None:
    user = await sign_up(client, "d@example.com")
    code = await _code(client)
    first = await _poll(client, code["device_code"])
    assert first.status_code == 400 and first.json()["error"] == "authorization_pending"
    assert first.headers["cache-control"] == "no-store"
    fast = await _poll(client, code["device_code"])
    assert fast.json()["error"] == "slow_down"
    assert (await rows(core, "SELECT interval_s FROM device_codes"))[0][0] == 10
    # JSON approve/deny endpoints for signed-in users.
    denied = await client.post(f"{D}/deny", headers=user.headers, json={"userCode": code["user_code"]})
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    assert_error(await client.post(f"{D}/approve", headers=user.headers, json={"userCode": code["user_code"]}),
                 409, "USER_CODE_USED")
    assert_error(await client.post(f"{D}/approve", headers=user.headers, json={"userCode": "ZZZZ-ZZZZ"}),
                 404, "USER_CODE_NOT_FOUND")
    assert_error(await client.post(f"{D}/approve", headers=user.headers, json={"userCode": "nope"}),
                 400, "INVALID_USER_CODE")
    assert_error(await client.post(f"{D}/approve", json={"userCode": code["user_code"]}), 401)
    assert_error(await client.post(f"{D}/approve", headers=user.headers, json={}), 400, "VALIDATION_ERROR")
    async with core.context("iam").db.session() as s:
        await s.execute(text("UPDATE device_codes SET last_polled_at = NULL"))
    assert (await _poll(client, code["device_code"])).json()["error"] == "access_denied"


async def test_token_errors(client: httpx.AsyncClient, core: Core) -> None:
    code = await _code(client)
    bad_grant = await client.post(f"{D}/token", data={"grant_type": "password", "device_code": code["device_code"]})
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    missing = await client.post(f"{D}/token", json={"grant_type": GRANT})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    unknown = await client.post(f"{D}/token", json={"grant_type": GRANT, "device_code": "nope"})
    assert unknown.json()["error"] == "invalid_grant"
    not_json = await client.post(f"{D}/token", content=b"{", headers={"content-type": "application/json"})
    assert not_json.json()["error"] == "invalid_request"
    async with core.context("iam").db.session() as s:
        await s.execute(text("UPDATE device_codes SET expires_at = 1"))
    expired = await client.post(f"{D}/token", json={"grant_type": GRANT, "device_code": code["device_code"]})
    assert expired.json()["error"] == "expired_token"


async def test_activate_form_needs_valid_csrf_and_session(client: httpx.AsyncClient, core: Core) -> None:
    user = await sign_up(client, "csrf@example.com")
    code = await _code(client)
    cookie = {"nno_session": user.token}
    forged = await client.post(f"{IAM}/activate", cookies=cookie, data={
        "action": "approve", "csrf_token": "0" * 64, "user_code": code["user_code"]})
    assert forged.status_code == 403
    # A token bound to another session does not work either.
    other = await sign_up(client, "other@example.com")
    other_page = await client.get(f"{IAM}/activate", cookies={"nno_session": other.token})
    stolen = await client.post(f"{IAM}/activate", cookies=cookie, data={
        "action": "approve", "csrf_token": _csrf(other_page.text), "user_code": code["user_code"]})
    assert stolen.status_code == 403
    no_session = await client.post(f"{IAM}/activate", data={"action": "approve", "csrf_token": "x",
                                                             "user_code": code["user_code"]})
    assert no_session.status_code == 401
    page = await client.get(f"{IAM}/activate", cookies=cookie)
    wrong_code = await client.post(f"{IAM}/activate", cookies=cookie, data={
        "action": "approve", "csrf_token": _csrf(page.text), "user_code": "ZZZZ-ZZZZ"})
    assert wrong_code.status_code == 404
    invalid = await client.post(f"{IAM}/activate", cookies=cookie, data={
        "action": "approve", "csrf_token": _csrf(page.text), "user_code": "<script>"})
    assert invalid.status_code == 400 and "<script>" not in invalid.text
    bad_signin = await client.post(f"{IAM}/activate", data={"action": "signin", "csrf_token": "x",
                                                             "email": "csrf@example.com", "password": PASSWORD})
    assert bad_signin.status_code == 403
    assert (await rows(core, "SELECT status FROM device_codes"))[0][0] == "pending"


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_user_codes_normalize(data: st.DataObject) -> None:
    code = new_user_code()
    assert normalize_user_code(code) == code
    shown = format_user_code(code)
    assert normalize_user_code(shown.lower()) == code
    assert normalize_user_code(" " + shown[:4] + " " + shown[5:]) == code
    junk = data.draw(st.text(max_size=12))
    norm = normalize_user_code(junk)
    if norm is not None:
        assert len(norm) == 8 and set(norm) <= set(USER_CODE_ALPHABET)
    assert not set("01OIL") & set(USER_CODE_ALPHABET)
