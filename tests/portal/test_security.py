"""The Portal's browser protections: CSRF on every unsafe request, CSP and security headers, and
the `next=` rule (property-based)."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from nno.kernel.redirects import same_origin_target
from nno.portal.app import VENDOR_DIR
from nno.portal.paths import is_portal_path
from nno.portal.security import CSP, csrf_token, safe_next
from tests.portal.conftest import IAM, PASSWORD, Browser


async def test_pages_carry_a_strict_csp_and_security_headers(browser: Browser) -> None:
    for path in ("/sign-in", "/sign-up", "/docs", "/no-such-page"):
        resp = await browser.get(path)
        csp = resp.headers["content-security-policy"]
        assert csp == CSP and "script-src 'self'" in csp and "'unsafe-inline'" not in csp, path
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "same-origin"
    page = await browser.get("/sign-in")
    # No inline script at all: every <script> has a src under /static.
    assert "<script>" not in page.text and 'src="/static/vendor/htmx.min.js"' in page.text
    assert page.headers["cache-control"] == "no-store"
    js = await browser.get("/static/vendor/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:200]
    # One vendored copy: the feature SDK's, which the console shell serves too.
    assert js.content == (VENDOR_DIR / "htmx.min.js").read_bytes()
    assert (await browser.get("/static/htmx.min.js")).status_code == 404
    assert js.headers["cache-control"].startswith("public")


async def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
        browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.get("/sign-up")
    resp = await browser.post("/sign-up", {"name": "X", "email": "x@example.com", "password": PASSWORD},
                              csrf=False)
    assert resp.status_code == 403 and "CSRF_REFUSED" in resp.text
    assert "nno_session" not in browser.http.cookies
    tried = await client.post(f"{IAM}/api/auth/sign-in/email", json={"email": "x@example.com", "password": PASSWORD})
    assert tried.status_code == 401  # the account was never created


async def test_a_token_for_another_browser_is_refused(browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.sign_up("victim@example.com")
    forged = csrf_token(b"not-the-secret", browser.http.cookies["nno_csrf"])
    resp = await browser.http.post("/account/profile", data={"name": "Pwned", "csrf": forged})
    assert resp.status_code == 403
    stranger = Browser(httpx.AsyncClient(transport=browser.http._transport, base_url=str(browser.http.base_url)))
    await stranger.get("/sign-in")
    resp = await browser.http.post("/account/profile", data={"name": "Pwned", "csrf": stranger.csrf})
    assert resp.status_code == 403
    await stranger.http.aclose()
    assert "Pwned" not in (await browser.get("/account")).text


async def test_htmx_sends_the_token_as_a_header(browser: Browser) -> None:
    await browser.sign_up("htmx@example.com")
    resp = await browser.http.post("/account/profile", data={"name": "Via Htmx"},
                                   headers={"HX-Request": "true", "X-CSRF-Token": browser.csrf})
    assert resp.status_code == 204 and resp.headers["hx-redirect"] == "/account?saved=1"
    refused = await browser.http.post("/account/profile", data={"name": "No Token"}, headers={"HX-Request": "true"})
    assert refused.status_code == 403


BASE = "http://127.0.0.1:8787"


@given(st.text(max_size=80))
def test_safe_next_only_yields_same_site_paths(target: str) -> None:
    out = safe_next(target, BASE)
    assert out.startswith("/") and not out.startswith("//") and "\\" not in out
    assert all(ord(ch) > 0x20 and ord(ch) != 0x7F for ch in out)
    # The browser reads the answer as the same path on the Portal's own origin.
    assert same_origin_target(out, BASE) == BASE + out


@given(st.sampled_from(["//", "/\\", "\\\\", "/\t/", "/\n/", " //", "https://", "http://x@"]),
       st.from_regex(r"[a-z]{1,12}\.example", fullmatch=True))
def test_safe_next_refuses_other_origins(prefix: str, host: str) -> None:
    assert safe_next(prefix + host + "/x", BASE) == "/"


@given(st.sampled_from(["javascript:", "data:", "file:", "mailto:", "ftp://"]), st.text(max_size=30))
def test_safe_next_refuses_other_schemes(prefix: str, rest: str) -> None:
    assert safe_next(prefix + rest, BASE) == "/"


def test_safe_next_keeps_a_same_site_path_and_normalizes_it() -> None:
    assert safe_next("/platforms/p1?tab=keys", BASE) == "/platforms/p1?tab=keys"
    assert safe_next("/api/v1/iam/activate?user_code=ABCD-EFGH", BASE) == "/api/v1/iam/activate?user_code=ABCD-EFGH"
    assert safe_next("/a/../b c", BASE) == "/b%20c"
    assert safe_next(BASE + "/account", BASE) == "/account"
    assert safe_next("http://127.0.0.1:9999/account", BASE) == "/"
    assert safe_next("", BASE, "/platforms/new") == "/platforms/new"


@given(st.text(max_size=40))
def test_the_gateways_own_paths_never_reach_the_portal(rest: str) -> None:
    assert not is_portal_path("/api/" + rest)
    assert not is_portal_path("/api") and not is_portal_path("/health") and not is_portal_path("/openapi.json")
    assert is_portal_path("/" + rest) == (not ("/" + rest).startswith("/api/")
                                          and "/" + rest not in ("/api", "/health", "/openapi.json"))
