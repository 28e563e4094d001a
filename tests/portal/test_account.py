"""Portal account pages through the core: sign up, sign in, magic link, password reset, profile,
sessions, sign out, and the device-flow entry."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from tests.conftest import BASE_URL
from tests.portal.conftest import IAM, PASSWORD, Browser, mails


async def test_root_sends_a_stranger_to_sign_in_and_the_gateway_keeps_its_paths(
        browser: Browser, client: httpx.AsyncClient) -> None:
    resp = await browser.get("/")
    assert resp.status_code == 303 and resp.headers["location"] == "/sign-in"
    page = await browser.get("/sign-in")
    assert page.status_code == 200 and "Sign in to NNO" in page.text
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/openapi.json")).json()["paths"]
    api = await client.get("/api/v1/nothing-here")
    assert api.status_code == 401 and api.json()["error"]["code"] == "UNAUTHORIZED"
    assert (await client.get("/api")).headers["content-type"].startswith("application/json")


async def test_sign_up_sets_a_hardened_session_cookie_and_shows_the_account(browser: Browser) -> None:
    resp = await browser.sign_up("ann@example.com", name="Ann")
    assert resp.headers["location"] == "/platforms/new"
    cookie = next(v for k, v in resp.headers.multi_items() if k == "set-cookie" and v.startswith("nno_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    page = await browser.get("/account")
    assert page.status_code == 200 and "ann@example.com" in page.text and "this browser" in page.text


async def test_secure_cookies_when_the_public_url_is_https(make_settings: Callable[..., object]) -> None:
    from nno.core import Core

    core = Core(make_settings(public_url="https://nno.example.com"))  # type: ignore[arg-type]
    await core.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                     base_url="https://nno.example.com") as http:
            b = Browser(http)
            first = await b.get("/sign-up")
            csrf_cookie = next(v for k, v in first.headers.multi_items() if k == "set-cookie")
            assert "Secure" in csrf_cookie and "HttpOnly" in csrf_cookie
            resp = await b.post("/sign-up", {"name": "S", "email": "s@example.com", "password": PASSWORD})
            cookie = next(v for k, v in resp.headers.multi_items()
                          if k == "set-cookie" and v.startswith("nno_session="))
            assert "Secure" in cookie
    finally:
        await core.stop()


async def test_wrong_password_shows_the_gateways_message_and_sets_no_session(browser: Browser) -> None:
    await browser.sign_up("bob@example.com")
    await browser.post("/sign-out")
    resp = await browser.sign_in("bob@example.com", "not-the-password")
    assert resp.status_code == 401
    assert 'role="alert"' in resp.text and "nno_session" not in resp.headers.get("set-cookie", "")
    assert (await browser.get("/account")).status_code == 303


async def test_sign_in_follows_only_a_same_site_next(browser: Browser) -> None:
    await browser.sign_up("next@example.com")
    await browser.post("/sign-out")
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example"):
        resp = await browser.post("/sign-in", {"email": "next@example.com", "password": PASSWORD, "next": evil})
        assert resp.status_code == 303 and resp.headers["location"] == "/", evil
    # Read as a browser reads it, a CR/LF is dropped: a same-site path, and no header is injected.
    resp = await browser.post("/sign-in", {"email": "next@example.com", "password": PASSWORD,
                                           "next": "/ok\r\nSet-Cookie: x=1"})
    assert resp.headers["location"] == "/okSet-Cookie:%20x=1" and "x" not in resp.cookies
    resp = await browser.post("/sign-in", {"email": "next@example.com", "password": PASSWORD, "next": "/account"})
    assert urlsplit(resp.headers["location"]).path == "/account"


async def test_sign_out_ends_the_session_at_iam(browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.sign_up("out@example.com")
    token = browser.http.cookies["nno_session"]
    resp = await browser.post("/sign-out")
    assert resp.status_code == 303 and resp.headers["location"] == "/sign-in"
    assert "nno_session" not in browser.http.cookies
    still = await client.get(f"{IAM}/api/nno/session", headers={"Authorization": f"Bearer {token}"})
    assert still.status_code == 401


async def test_profile_update_and_session_revoke(browser_factory: Callable[[], Browser],
                                                 client: httpx.AsyncClient) -> None:
    laptop, phone = browser_factory(), browser_factory()
    await laptop.sign_up("multi@example.com", name="Old Name")
    await phone.sign_in("multi@example.com")
    resp = await laptop.post("/account/profile", {"name": "New Name"})
    assert resp.status_code == 303
    assert 'value="New Name"' in (await laptop.get("/account")).text
    page = await laptop.get("/account")
    revoke = re.findall(r'action="/account/sessions/([^/"]+)/revoke"', page.text)
    assert len(revoke) == 1
    resp = await laptop.post(f"/account/sessions/{revoke[0]}/revoke")
    assert resp.status_code == 303
    assert (await phone.get("/account")).status_code == 303  # the phone is signed out
    assert (await laptop.get("/account")).status_code == 200


async def test_magic_link_signs_the_browser_in(browser: Browser, client: httpx.AsyncClient) -> None:
    other = Browser(browser.http)
    await other.sign_up("magic@example.com")
    await other.post("/sign-out")
    resp = await browser.post("/sign-in/magic-link", {"email": "magic@example.com", "next": "/account"})
    assert resp.status_code == 200 and "sign-in link is on its way" in resp.text
    body = (await mails(client, "magic@example.com"))[0]
    link = re.search(r"(/api/v1/iam/api/auth/magic-link/verify\?\S+)", body)
    assert link, body
    resp = await browser.http.get(link.group(1))
    assert resp.status_code == 302 and urlsplit(resp.headers["location"]).path == "/account"
    assert (await browser.get("/account")).status_code == 200


async def test_password_reset_through_the_portal(browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.sign_up("forgot@example.com")
    await browser.post("/sign-out")
    resp = await browser.post("/forgot-password", {"email": "forgot@example.com"})
    assert resp.status_code == 200 and "reset link is on its way" in resp.text
    body = (await mails(client, "forgot@example.com"))[0]
    link = re.search(r"(/api/v1/iam/api/auth/reset-password\S*)", body)
    assert link, body
    resp = await browser.http.get(link.group(1))
    assert resp.status_code == 302 and resp.headers["location"].startswith(f"{BASE_URL}/reset-password?token=")
    page = await browser.get(resp.headers["location"])
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    resp = await browser.post("/reset-password", {"token": token.group(1), "newPassword": "a-brand-new-pass-42"})
    assert resp.status_code == 303
    assert (await browser.sign_in("forgot@example.com")).status_code == 401
    assert (await browser.sign_in("forgot@example.com", "a-brand-new-pass-42")).status_code == 303
    again = await browser.post("/reset-password", {"token": token.group(1), "newPassword": "yet-another-pass-42"})
    assert again.status_code >= 400 and 'role="alert"' in again.text


async def test_activate_offers_sign_in_then_hands_over_to_the_device_approval(
        browser: Browser, client: httpx.AsyncClient) -> None:
    code = await client.post(f"{IAM}/api/nno/device/code", data={"client_id": "nno-cli"})
    assert code.status_code == 200, code.text
    user_code = code.json()["user_code"]
    page = await browser.get(f"/activate?user_code={user_code}")
    assert page.status_code == 200 and user_code in page.text and "/sign-up?next=" in page.text
    await browser.sign_up("device@example.com")
    resp = await browser.get(f"/activate?user_code={user_code}")
    assert resp.status_code == 303
    target = resp.headers["location"]
    assert target.startswith(f"{IAM}/activate?user_code=")
    approval = await browser.http.get(target)
    # The session the Portal started is the one IAM's approval page sees.
    assert approval.status_code == 200 and "device@example.com" in approval.text


async def test_iams_device_page_wears_the_portals_look_under_a_strict_csp(
        browser: Browser, client: httpx.AsyncClient) -> None:
    code = await client.post(f"{IAM}/api/nno/device/code", data={"client_id": "nno-cli"})
    user_code = code.json()["user_code"]
    page = await browser.http.get(f"{IAM}/activate", params={"user_code": user_code})
    assert page.status_code == 200
    assert "/static/portal.css" in page.text and "<style" not in page.text and "<script" not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    # Sign-up and the magic link are the Portal's /activate, which keeps the code.
    assert f"href='/activate?user_code={user_code}'" in page.text
    assert (await browser.get("/static/portal.css")).status_code == 200
    await browser.sign_up("look@example.com")
    approval = await browser.http.get(f"{IAM}/activate", params={"user_code": user_code})
    assert "look@example.com" in approval.text and "class=top" in approval.text and "nno-cli" in approval.text
