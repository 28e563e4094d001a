"""Portal platform pages through the core: onboarding with progress, detail, lifecycle with a
confirmation, tenants, API keys, audit; isolation between platforms; the operators' page."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from nno.portal import platforms
from tests.conftest import SERVICE_KEY
from tests.portal.conftest import IAM, Browser, make_operator


async def test_onboarding_ends_on_the_platform_page_with_its_urls(browser: Browser) -> None:
    await browser.sign_up("owner@example.com")
    wizard = await browser.get("/platforms/new")
    # The wizard offers the Stack Registry's catalogue by template name.
    assert wizard.status_code == 200 and '<option value="saas-starter">' in wizard.text
    pid = await browser.onboard("Acme Corp", "acme-corp")
    page = await browser.get(f"/platforms/{pid}?welcome=1")
    assert page.status_code == 200
    assert "Your platform is ready" in page.text and "badge s-active" in page.text
    assert f"http://console.app.default.{pid}.nno.localhost:8787" in page.text
    assert f"http://auth.svc.default.{pid}.nno.localhost:8787" in page.text
    assert "PROVISION_PLATFORM" in page.text and "complete" in page.text
    listing = await browser.get("/platforms")
    assert "Acme Corp" in listing.text
    job = re.search(rf'href="/platforms/{pid}/jobs/([a-z0-9]+)"', page.text)
    assert job
    job_page = await browser.get(f"/platforms/{pid}/jobs/{job.group(1)}")
    assert job_page.status_code == 200 and "COMPLETED" in job_page.text


async def test_the_progress_page_polls_with_htmx_and_refreshes_without_javascript(browser: Browser) -> None:
    await browser.sign_up("poll@example.com")
    resp = await browser.post("/platforms/new", {"name": "Poll", "slug": "poll-co", "tier": "scale"})
    page = await browser.get(resp.headers["location"])
    assert page.status_code == 200
    if "is active" in page.text:  # already provisioned: nothing left to poll
        assert 'hx-trigger="every 1s"' not in page.text and 'http-equiv="refresh"' not in page.text
    else:  # still provisioning: htmx polls every second, a browser without JavaScript reloads
        assert 'hx-trigger="every 1s"' in page.text and 'http-equiv="refresh"' in page.text


async def test_onboarding_errors_are_shown_plainly(browser: Browser) -> None:
    await browser.sign_up("bad@example.com")
    resp = await browser.post("/platforms/new", {"name": "Bad", "slug": "NOT A SLUG", "tier": "starter"})
    assert resp.status_code == 400 and 'role="alert"' in resp.text and 'value="Bad"' in resp.text


async def test_lifecycle_action_names_its_consequence_then_applies(browser: Browser) -> None:
    await browser.sign_up("cancel@example.com")
    pid = await browser.onboard("Cancel Me", "cancel-me")
    confirm = await browser.get(f"/platforms/{pid}/lifecycle/cancel")
    assert confirm.status_code == 200 and "stays usable until the end of the billing period" in confirm.text
    resp = await browser.post(f"/platforms/{pid}/lifecycle/cancel", {"reason": "moving on"})
    assert resp.status_code == 303
    page = await browser.get(f"/platforms/{pid}")
    assert "badge s-pending_cancellation" in page.text and "moving on" in page.text
    # A user may not suspend: the gateway's refusal is shown, nothing changes.
    refused = await browser.post(f"/platforms/{pid}/lifecycle/suspend", {})
    assert refused.status_code in (403, 409) and 'role="alert"' in refused.text


async def test_tenants_sub_tenants_api_keys_and_audit(browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.sign_up("tenants@example.com")
    pid = await browser.onboard("Tenant Co", "tenant-co")
    resp = await browser.post(f"/platforms/{pid}/tenants", {"name": "Blue Team"})
    assert resp.status_code == 303
    listing = await browser.get(f"/platforms/{pid}/tenants")
    tid = re.search(rf'href="/platforms/{pid}/tenants/([a-z0-9]+)">Blue Team', listing.text)
    assert tid
    resp = await browser.post(f"/platforms/{pid}/tenants", {"name": "Blue Sub", "parent": tid.group(1)})
    assert resp.status_code == 303
    assert "Blue Sub" in (await browser.get(f"/platforms/{pid}/tenants/{tid.group(1)}")).text
    dup = await browser.post(f"/platforms/{pid}/tenants", {"name": "Blue Team"})
    assert dup.status_code == 409 and 'role="alert"' in dup.text

    created = await browser.post(f"/platforms/{pid}/keys", {"name": "ci"})
    assert created.status_code == 200
    key = re.search(r'<code id="new-key" class="secret">([^<]+)</code>', created.text)
    assert key and 'data-copy="new-key"' in created.text
    works = await client.get(f"/api/v1/platforms/{pid}", headers={"x-api-key": key.group(1)})
    assert works.status_code == 200
    keys_page = await browser.get(f"/platforms/{pid}/keys")
    assert key.group(1) not in keys_page.text  # shown once only
    kid = re.search(rf'/platforms/{pid}/keys/([^/"]+)/revoke', keys_page.text)
    assert kid
    assert (await browser.post(f"/platforms/{pid}/keys/{kid.group(1)}/revoke")).status_code == 303
    assert "s-revoked" in (await browser.get(f"/platforms/{pid}/keys")).text

    members = await browser.get(f"/platforms/{pid}/members")
    assert members.status_code == 200 and "platform-admin" in members.text, members.text

    audit = await browser.get(f"/platforms/{pid}/audit")
    assert audit.status_code == 200 and "entity.create" in audit.text
    filtered = await browser.get(f"/platforms/{pid}/audit?action=no-such-action")
    assert "entity.create" not in filtered.text and "match the filter" in filtered.text
    only = await browser.get(f"/platforms/{pid}/audit?action=entity")
    assert "entity.create" in only.text and "platform.create" not in only.text


async def test_another_platforms_user_cannot_see_or_act_on_it(browser_factory: Callable[[], Browser]) -> None:
    alice, mallory = browser_factory(), browser_factory()
    await alice.sign_up("alice@example.com")
    pid = await alice.onboard("Alice Inc", "alice-inc")
    await mallory.sign_up("mallory@example.com")
    for path in (f"/platforms/{pid}", f"/platforms/{pid}/tenants", f"/platforms/{pid}/keys",
                 f"/platforms/{pid}/audit", f"/platforms/{pid}/lifecycle/cancel", f"/platforms/{pid}/members",
                 f"/platforms/{pid}/stacks", f"/platforms/{pid}/billing"):
        resp = await mallory.get(path)
        assert resp.status_code == 404, path
        assert "Alice Inc" not in resp.text
    for path, form in ((f"/platforms/{pid}/tenants", {"name": "Evil"}), (f"/platforms/{pid}/keys", {"name": "evil"}),
                       (f"/platforms/{pid}/lifecycle/cancel", {})):
        resp = await mallory.post(path, form)
        assert resp.status_code == 404, path
    assert "Alice Inc" not in (await mallory.get("/platforms")).text
    page = await alice.get(f"/platforms/{pid}")
    assert "badge s-active" in page.text
    assert "Evil" not in (await alice.get(f"/platforms/{pid}/tenants")).text
    assert "evil" not in (await alice.get(f"/platforms/{pid}/keys")).text
    assert (await mallory.get("/operators")).status_code == 403


async def test_operator_suspends_and_the_owner_sees_it(browser_factory: Callable[[], Browser],
                                                       client: httpx.AsyncClient) -> None:
    owner, operator = browser_factory(), browser_factory()
    await owner.sign_up("own@example.com")
    pid = await owner.onboard("Suspend Me", "suspend-me")
    await make_operator(client, "ops@example.com")
    assert (await operator.sign_in("ops@example.com")).status_code == 303
    ops = await operator.get("/operators")
    assert ops.status_code == 200 and "Suspend Me" in ops.text and "Dead-lettered jobs" in ops.text
    confirm = await operator.get(f"/platforms/{pid}/lifecycle/suspend?back=operators")
    assert "refused (451)" in confirm.text
    resp = await operator.post(f"/platforms/{pid}/lifecycle/suspend", {"reason": "unpaid", "back": "operators"})
    assert resp.status_code == 303 and resp.headers["location"] == "/operators"
    # The owner sees it: the platform's page says so, or (once the gateway's short auth cache has
    # the platform as the session's active one) the gateway's 451 is shown plainly.
    page = await owner.get(f"/platforms/{pid}")
    assert ("This platform is suspended: unpaid" in page.text
            or (page.status_code == 451 and "PLATFORM_SUSPENDED" in page.text)), page.text
    resp = await operator.post(f"/platforms/{pid}/lifecycle/restore", {})
    assert resp.status_code == 303
    assert "badge s-active" in (await owner.get(f"/platforms/{pid}")).text


async def test_docs_render_the_merged_openapi(browser: Browser) -> None:
    page = await browser.get("/docs")
    assert page.status_code == 200
    assert "/api/v1/platforms/{platform_id}/tenants" in page.text and "/api/v1/iam/api/auth/sign-up/email" in page.text


async def test_pages_need_a_session(browser: Browser) -> None:
    for path in ("/platforms", "/platforms/new", "/account", "/operators", "/platforms/abcdefghij/keys"):
        resp = await browser.get(path)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/sign-in?next="), path
    hx = await browser.get("/platforms", headers={"HX-Request": "true"})
    assert hx.status_code == 204 and hx.headers["hx-redirect"].startswith("/sign-in")
    assert IAM


async def test_stacks_and_billing_show_the_catalogue_and_the_plan(browser: Browser) -> None:
    await browser.sign_up("stacks@example.com")
    pid = await browser.onboard("Stack Co", "stack-co")
    stacks = await browser.get(f"/platforms/{pid}/stacks")
    assert stacks.status_code == 200 and "not available" not in stacks.text
    assert "default" in stacks.text  # the platform's own default stack, from the Registry
    assert "SaaS Starter" in stacks.text or "saas-starter" in stacks.text  # the Stack Registry's catalogue
    billing = await browser.get(f"/platforms/{pid}/billing")
    assert billing.status_code == 200 and "not available" not in billing.text and "starter" in billing.text


async def test_audit_filters_apply_on_the_server_and_paging_keeps_them(
        browser: Browser, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    await browser.sign_up("auditor@example.com")
    pid = await browser.onboard("Audit Co", "audit-co")
    for name in ("Red", "Green"):  # with the default tenant, the starter tier's three
        assert (await browser.post(f"/platforms/{pid}/tenants", {"name": name})).status_code == 303
    monkeypatch.setattr(platforms, "AUDIT_PAGE", 1)
    seen: list[str] = []
    page = await browser.get(f"/platforms/{pid}/audit?action=ENTITY.create&actor=user")
    for _ in range(10):
        assert page.status_code == 200
        rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]+)</td><td>(\w+) ", page.text)
        assert len(rows) == 1 and rows[0] == ("entity.create", "user"), page.text
        seen.append(rows[0][0])
        more = re.search(r'<a href="([^"]+)">Older entries', page.text)
        if not more:
            break
        link = more.group(1).replace("&amp;", "&")
        assert "action=ENTITY.create" in link and "actor=user" in link and "cursor=" in link
        page = await browser.get(link)
    direct = await client.get(f"/api/v1/platforms/{pid}/audit", params={"action": "entity.create", "actorType": "user"},
                              headers={"Authorization": f"Bearer {SERVICE_KEY}"})
    total = direct.json()["pagination"]["total"]
    assert total >= 2 and seen == ["entity.create"] * total  # every match, page by page, and nothing else
    none = await browser.get(f"/platforms/{pid}/audit?actor=operator")
    assert "match the filter" in none.text and "entity.create" not in none.text
    # The Registry refuses an actor type it does not know.
    assert (await client.get(f"/api/v1/platforms/{pid}/audit", params={"actorType": "nobody"},
                             headers={"Authorization": f"Bearer {SERVICE_KEY}"})).status_code == 400
