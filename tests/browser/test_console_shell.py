"""A platform's console shell in Chromium: sign up, switch tenants, open each first-party feature,
be refused a gated page, revoke a session. Keeps screenshots of the main screens in docs/."""

from __future__ import annotations

from typing import Any

import httpx

from nno.core import Core
from nno.registry.tenant_orgs import TenantOrgDispatcher
from tests.browser.conftest import SCREENSHOTS, async_api
from tests.features.conftest import activate, prove_address, provisioned_platform

expect = async_api.expect
PW = "a long enough password"
FIRST_PARTY = ("settings", "members", "tasks")


async def sign_up(page: Any, base: str, name: str, email: str) -> None:
    await page.goto(base + "/")
    assert "/sign-in" in page.url
    await page.get_by_role("link", name="Create an account").click()
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PW)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/tenants")


async def make_admin(core: Core, pid: str, email: str) -> None:
    """As NNO would: a service token for the platform's auth Worker makes the (proven) account admin."""
    from nno.iam import service_tokens

    await prove_address(core, pid, email)
    token, _ = service_tokens.mint(core.settings, subject="test", audience=f"auth:{pid}", ttl_s=60)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                 base_url=f"http://auth.svc.default.{pid}.nno.localhost") as auth:
        resp = await auth.put(f"/api/nno/users/{email}/role", json={"role": "platform-admin"},
                              headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text


async def test_a_user_signs_up_works_in_two_tenants_and_is_refused_a_gated_page(
        served: int, chromium: Any, core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    pid, tenant = await provisioned_platform(client, service_headers)
    base = f"http://{pid}.nno.localhost:{served}"
    context = await chromium.new_context(viewport={"width": 1200, "height": 760})
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    await page.goto(base + "/sign-in")
    assert await page.title() == f"Sign in · {(await page.locator('.brand').inner_text())}"
    # The platform's icon (its initials by default) in the header and as the favicon.
    icon = page.get_by_test_id("platform-icon")
    assert await icon.is_visible() and await icon.evaluate("i => i.complete && i.naturalWidth > 0")
    assert await page.locator('link[rel="icon"]').get_attribute("href") == "/_shell/static/icon.svg"
    await page.screenshot(path=str(SCREENSHOTS / "shell-sign-in.png"))
    await sign_up(page, base, "Ada", "ada@example.com")

    # No features yet: the shell says so.
    await page.goto(base + "/")
    assert await page.get_by_test_id("no-features").is_visible()
    await page.screenshot(path=str(SCREENSHOTS / "shell-no-features.png"))

    for feature in FIRST_PARTY:
        assert (await activate(client, service_headers, pid, tenant, feature))["status"] == "COMPLETED"

    # Two tenants; switching changes the shell's tenant.
    await page.goto(base + "/tenants")
    for name in ("Blue team", "Red team"):
        await page.get_by_label("New tenant").fill(name)
        await page.get_by_role("button", name="Create tenant").click()
        await page.wait_for_url(base + "/")
        await page.goto(base + "/tenants")
    assert await page.get_by_test_id("tenant").inner_text() == "Red team"
    await page.screenshot(path=str(SCREENSHOTS / "shell-tenants.png"))
    await page.get_by_role("button", name="Switch to Blue team").click()
    await page.wait_for_url(base + "/")
    assert await page.get_by_test_id("tenant").inner_text() == "Blue team"
    await page.screenshot(path=str(SCREENSHOTS / "shell-home.png"))

    # Each first-party feature opens from the sidebar, on its own host, inside the shell's frame:
    # the same header and sidebar, from which the next feature opens directly.
    await page.goto(base + "/")
    for feature in FIRST_PARTY:
        await page.locator(f'nav a[data-feature="{feature}"]').first.click()
        await page.wait_for_url(f"**/{feature}.svc.default.{pid}.nno.localhost:{served}/**")
        sidebar = page.get_by_test_id("shell-sidebar")
        assert await sidebar.is_visible(), await page.content()
        for shown in FIRST_PARTY:  # Ada's sidebar: every feature she may open, whichever page she is on
            assert await sidebar.locator(f'a[data-feature="{shown}"]').count() >= 1, shown
        assert await page.get_by_test_id("tenant").inner_text() == "Blue team"
        assert await page.locator(f'a[data-shell="{pid}"] img').evaluate("i => i.complete && i.naturalWidth > 0")
        if feature == "tasks":
            await page.screenshot(path=str(SCREENSHOTS / "shell-feature-tasks.png"))
    await page.locator(f'a[data-shell="{pid}"]').click()
    await page.wait_for_url(base + "/")

    # A tenant created through the Registry's API is an organization on the platform's auth Worker:
    # Ada, a platform-admin, finds it in the switcher and joins it.
    await make_admin(core, pid, "ada@example.com")
    made = await client.post(f"/api/v1/platforms/{pid}/tenants", json={"name": "Green team", "slug": "green"},
                             headers=service_headers)
    assert made.status_code == 201, made.text
    await TenantOrgDispatcher.of(core.context("registry")).drain()
    await page.goto(base + "/tenants")
    await page.screenshot(path=str(SCREENSHOTS / "shell-tenant-join.png"))
    await page.get_by_role("button", name="Join and switch to Green team").click()
    await page.wait_for_url(base + "/")
    assert await page.get_by_test_id("tenant").inner_text() == "Green team"

    # Keyboard: the skip link is the first stop and leads to the content.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert not [e for e in errors if "Content Security Policy" in e], errors

    # A user with no tenant holds none of the features' required permissions: refused.
    other = await (await chromium.new_context()).new_page()
    await sign_up(other, base, "Bob", "bob@example.com")
    await other.goto(base + "/")
    assert await other.locator('nav.side a[data-feature]').count() == 0
    await other.goto(base + "/f/tasks")
    assert await other.get_by_role("heading", name="Not allowed").is_visible()
    await other.screenshot(path=str(SCREENSHOTS / "shell-refused.png"))
    await context.close()


async def test_a_leaked_session_is_revoked_from_the_sessions_page(
        served: int, chromium: Any, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    pid, _ = await provisioned_platform(client, service_headers)
    base = f"http://{pid}.nno.localhost:{served}"
    mine = await (await chromium.new_context()).new_page()
    await sign_up(mine, base, "Cy", "cy@example.com")
    leaked = await (await chromium.new_context()).new_page()
    await leaked.goto(base + "/sign-in")
    await leaked.get_by_label("Email").fill("cy@example.com")
    await leaked.get_by_label("Password").fill(PW)
    await leaked.get_by_role("button", name="Sign in").click()
    await leaked.wait_for_url(base + "/")

    await mine.goto(base + "/sessions")
    rows = mine.locator("tr[data-session]")
    assert await rows.count() == 2
    await mine.screenshot(path=str(SCREENSHOTS / "shell-sessions.png"))
    other_row = mine.locator("tr[data-session]", has_not=mine.locator(".badge"))
    await other_row.get_by_role("button", name="Revoke").click()
    await expect(mine.locator("tr[data-session]")).to_have_count(1)  # htmx swapped the page in

    await leaked.goto(base + "/")
    assert "/sign-in" in leaked.url
