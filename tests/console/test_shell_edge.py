"""The console shell through the edge (Host header): sign-up, sign-in, tenants, composition from the
active features, permission gates, sessions, and isolation between platforms."""

from __future__ import annotations

import re

import httpx

from nno.core import Core
from tests.features.conftest import At, activate, at, deactivate, provisioned_platform

__all__ = ["at"]

PW = "a long enough password"


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def post_form(c: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    page = await c.get(path, headers={"accept": "text/html"})
    return await c.post(path, data={**data, "csrf_token": csrf(page)}, headers={"accept": "text/html"})


async def signed_up(at: At, pid: str, email: str) -> httpx.AsyncClient:
    c = at(f"{pid}.nno.localhost")
    resp = await post_form(c, "/sign-up", {"name": email.split("@")[0], "email": email, "password": PW})
    assert resp.status_code == 303 and resp.headers["location"] == "/tenants", resp.text
    return c


async def test_sign_up_tenants_and_composition(core: Core, client: httpx.AsyncClient,
                                               service_headers: dict[str, str], at: At) -> None:
    pid, tenant = await provisioned_platform(client, service_headers)
    shell = at(f"{pid}.nno.localhost")
    first = await shell.get("/", headers={"accept": "text/html"})
    assert first.status_code == 303 and first.headers["location"].startswith("/sign-in")
    page = await shell.get("/sign-in", headers={"accept": "text/html"})
    assert page.status_code == 200 and "Acme" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # The platform's live status comes from the Registry through the edge, never from the client.
    spoofed = await shell.get("/sign-in", headers={"x-nno-platform-status": "suspended"})
    assert 'data-status="active"' in spoofed.text and 'data-status="suspended"' not in spoofed.text
    asset = await shell.get("/_shell/static/htmx.min.js")
    assert asset.status_code == 200 and len(asset.content) > 10_000
    # The documented name answers with the same shell.
    assert (await at(f"console.app.default.{pid}.nno.localhost").get("/sign-in")).status_code == 200

    # A form without this browser's CSRF token changes nothing.
    forged = await shell.post("/sign-up", data={"name": "x", "email": "x@example.com", "password": PW})
    assert forged.status_code == 403 and "nno_session" not in shell.cookies
    ada = await signed_up(at, pid, "ada@example.com")
    cookie = next(c for c in ada.cookies.jar if c.name == "nno_session")
    assert cookie.domain == f".{pid}.nno.localhost" and cookie.has_nonstandard_attr("HttpOnly")

    # No features yet: a clear page.
    home = await ada.get("/", headers={"accept": "text/html"})
    assert home.status_code == 200 and 'data-testid="no-features"' in home.text

    # Two tenants (organizations on the platform's auth Worker); the active one is the shell's.
    for name in ("Blue team", "Red team"):
        made = await post_form(ada, "/tenants", {"name": name, "next": "/"})
        assert made.status_code == 303, made.text
    page = await ada.get("/tenants", headers={"accept": "text/html"})
    assert 'data-testid="tenant">Red team' in page.text
    blue = re.search(r'name="organizationId" value="([^"]+)"', page.text)
    assert blue
    switched = await ada.post("/tenants", data={"organizationId": blue.group(1), "next": "/",
                                                "csrf_token": csrf(page)})
    assert switched.status_code == 303
    assert 'data-testid="tenant">Blue team' in (await ada.get("/profile")).text

    # Activating features rebuilds the shell: the sidebar follows their navigation order.
    for feature in ("settings", "tasks"):
        done = await activate(client, service_headers, pid, tenant, feature)
        assert done["status"] == "COMPLETED", done
    home = await ada.get("/", headers={"accept": "text/html"})
    links = re.findall(r'href="/f/([a-z-]+)[^"]*" data-feature', home.text)
    assert links == ["tasks", "settings"], home.text  # Projects (order 20) before Settings (order 90)

    # Through the gate to the feature's own host, with the signed ShellContext.
    opened = await ada.get("/f/tasks", headers={"accept": "text/html"})
    assert opened.status_code == 303 and opened.headers["location"] == f"http://tasks.svc.default.{pid}.nno.localhost:8787/"
    feature_page = await ada.get(opened.headers["location"], headers={"accept": "text/html"})
    assert feature_page.status_code == 200, feature_page.text
    assert f'data-shell="{pid}"' in feature_page.text and "Projects" in feature_page.text

    # A tampered ShellContext is not believed.
    token = ada.cookies.get("nno_shell", domain=f".{pid}.nno.localhost")
    assert token
    ada.cookies.set("nno_shell", token[:-3] + "AAA", domain=f".{pid}.nno.localhost")
    page = await ada.get(opened.headers["location"], headers={"accept": "text/html"})
    assert page.status_code == 200 and "data-shell=" not in page.text

    # Deactivating a feature rebuilds the shell without it.
    assert (await deactivate(client, service_headers, pid, tenant, "settings"))["status"] == "COMPLETED"
    home = await ada.get("/", headers={"accept": "text/html"})
    assert re.findall(r'href="/f/([a-z-]+)[^"]*" data-feature', home.text) == ["tasks"]
    assert (await ada.get("/f/settings", headers={"accept": "text/html"})).status_code == 404


async def test_gates_sessions_and_platform_isolation(core: Core, client: httpx.AsyncClient,
                                                     service_headers: dict[str, str], at: At) -> None:
    pid, tenant = await provisioned_platform(client, service_headers)
    other, _ = await provisioned_platform(client, service_headers)
    assert (await activate(client, service_headers, pid, tenant, "tasks"))["status"] == "COMPLETED"
    bob = await signed_up(at, pid, "bob@example.com")

    # Without a tenant Bob holds none of tasks' required permissions: no item, no page.
    home = await bob.get("/", headers={"accept": "text/html"})
    assert "/f/tasks" not in home.text and 'data-testid="nothing-allowed"' in home.text
    refused = await bob.get("/f/tasks", headers={"accept": "text/html"})
    assert refused.status_code == 403 and "tasks:read" in refused.text
    # ... and the feature's Worker refuses him too.
    direct = await bob.get(f"http://tasks.{pid}.nno.localhost:8787/", headers={"accept": "application/json"})
    assert direct.status_code in (403, 409), direct.text
    # Unknown features and pages are 404s, not redirects.
    assert (await bob.get("/f/nope", headers={"accept": "text/html"})).status_code == 404
    assert (await bob.get("/f/tasks/../../x", headers={"accept": "text/html"})).status_code in (403, 404)

    # Another platform's console never sees the cookie, nor believes the token.
    theirs = await bob.get(f"http://{other}.nno.localhost:8787/", headers={"accept": "text/html"})
    assert theirs.status_code == 303 and theirs.headers["location"].startswith("/sign-in")
    token = bob.cookies.get("nno_session", domain=f".{pid}.nno.localhost")
    stranger = at(f"{other}.nno.localhost")
    stranger.cookies.set("nno_session", str(token))
    assert (await stranger.get("/", headers={"accept": "text/html"})).status_code == 303

    # A second sign-in (say a leaked CLI session) is revoked from the sessions page.
    laptop = at(f"console.app.default.{pid}.nno.localhost")
    signed = await post_form(laptop, "/sign-in", {"email": "bob@example.com", "password": PW, "next": "/"})
    assert signed.status_code == 303
    page = await bob.get("/sessions", headers={"accept": "text/html"})
    ids = re.findall(r'name="sessionId" value="([^"]+)"', page.text)
    assert len(ids) == 2
    current = re.search(r'data-session="([^"]+)">\s*<td>[^<]*<span class="badge">this one', page.text)
    assert current
    leaked = next(i for i in ids if i != current.group(1))
    gone = await bob.post("/sessions", data={"sessionId": leaked, "csrf_token": csrf(page)})
    assert gone.status_code == 200 and leaked not in gone.text
    assert (await laptop.get("/", headers={"accept": "text/html"})).status_code == 303
    assert (await bob.get("/", headers={"accept": "text/html"})).status_code == 200

    # Wrong password: an error on the form, no cookie.
    again = at(f"{pid}.nno.localhost")
    wrong = await post_form(again, "/sign-in", {"email": "bob@example.com", "password": "nope", "next": "/"})
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    assert "nno_session" not in again.cookies
