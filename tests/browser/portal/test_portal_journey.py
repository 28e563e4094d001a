"""The Portal in Chromium: sign-up -> onboarding -> a provisioned platform -> tenant -> API key ->
an operator suspends it -> the owner sees the suspension. Screenshots of the main pages:
NNO_SCREENSHOTS=1 writes them to docs/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.cli.conftest import LiveServer
from tests.conftest import SERVICE_KEY

PASSWORD = "correct-horse-battery-9"


def _page(browser: Any, problems: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.set_default_timeout(60_000)
    # A CSP violation or a script error is a failure, not noise.
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return page


def _shot(page: Any, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def test_sign_up_to_a_suspended_platform(live: LiveServer, chromium: Any, screenshots: Path) -> None:
    problems: list[str] = []
    owner = _page(chromium, problems)
    base = live.url

    owner.goto(base + "/")
    owner.wait_for_url(re.compile(r".*/sign-in$"))
    _shot(owner, screenshots, "sign-in")
    owner.get_by_role("link", name="Create an account").click()
    owner.get_by_label("Name", exact=True).fill("Olive Owner")
    owner.get_by_label("Email").fill("olive@example.com")
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Sign up").click()

    owner.wait_for_url(re.compile(r".*/platforms/new$"))
    owner.get_by_label("Name", exact=True).fill("Browser Co")
    owner.get_by_label("Slug", exact=False).fill("browser-co")
    owner.get_by_label("growth").check()
    _shot(owner, screenshots, "onboarding")
    owner.get_by_role("button", name="Create and provision").click()
    owner.wait_for_url(re.compile(r".*/onboarding/[a-z0-9]+$"))
    # htmx polls the progress every second and lands on the platform's page when it is active.
    owner.wait_for_url(re.compile(r".*/platforms/[a-z0-9]+\?welcome=1$"), timeout=120_000)
    pid = re.search(r"/platforms/([a-z0-9]+)\?", owner.url).group(1)  # type: ignore[union-attr]
    assert owner.get_by_text("Your platform is ready.").is_visible()
    assert owner.locator(".badge", has_text="active").first.is_visible()
    assert owner.get_by_role("link", name=re.compile(rf"console\.app\.default\.{pid}")).is_visible()
    _shot(owner, screenshots, "platform")

    owner.get_by_role("navigation", name="Platform").get_by_role("link", name="Tenants").click()
    owner.get_by_label("New tenant").fill("Blue Team")
    owner.get_by_role("button", name="Create tenant").click()
    owner.wait_for_url(re.compile(rf".*/platforms/{pid}/tenants$"))
    assert owner.get_by_role("table").filter(has_text="Slug").get_by_role("link", name="Blue Team").is_visible()
    _shot(owner, screenshots, "tenants")

    owner.get_by_role("navigation", name="Platform").get_by_role("link", name="API keys").click()
    owner.get_by_label("Name", exact=True).fill("ci")
    owner.get_by_role("button", name="Create API key").click()
    key = owner.locator("#new-key").inner_text().strip()
    assert key
    with httpx.Client(base_url=base) as http:
        assert http.get(f"/api/v1/platforms/{pid}", headers={"x-api-key": key}).status_code == 200
    _shot(owner, screenshots, "api-key")

    with httpx.Client(base_url=base) as http:
        made = http.post("/api/v1/iam/api/nno/bootstrap", headers={"Authorization": f"Bearer {SERVICE_KEY}"},
                         json={"email": "ops@example.com", "password": PASSWORD, "name": "Operator"})
        assert made.status_code == 201, made.text
    operator = _page(chromium, problems)
    operator.goto(base + "/sign-in")
    operator.get_by_label("Email").first.fill("ops@example.com")
    operator.get_by_label("Password").fill(PASSWORD)
    operator.get_by_role("button", name="Sign in", exact=True).click()
    operator.get_by_role("link", name="Operators").click()
    row = operator.get_by_role("row").filter(has_text="Browser Co")
    row.get_by_role("link", name="Suspend").click()
    assert operator.get_by_text("refused (451)").is_visible()
    operator.get_by_label("Reason").fill("unpaid invoice")
    _shot(operator, screenshots, "confirm-suspend")
    operator.get_by_role("button", name="Yes, suspend browser-co").click()
    operator.wait_for_url(re.compile(r".*/operators$"))
    assert operator.get_by_role("row").filter(has_text="Browser Co").get_by_text("suspended").is_visible()
    _shot(operator, screenshots, "operators")

    assert not problems, problems
    # The owner's page says so; once the gateway knows the session's platform, its API answers 451.
    owner.goto(f"{base}/platforms/{pid}")
    body = owner.locator("main").inner_text()
    assert "suspended" in body.lower(), body
    _shot(owner, screenshots, "owner-sees-suspension")


def test_stack_activation_and_the_billing_pages(live: LiveServer, chromium: Any, screenshots: Path) -> None:
    """An owner activates a stack from the catalogue and follows its job, then changes tier (keyboard
    only on the confirmation) and reads usage and an invoice. Screenshots: docs/screenshots/portal-*."""
    problems: list[str] = []
    owner = _page(chromium, problems)
    base = live.url
    owner.goto(base + "/sign-up")
    owner.get_by_label("Name", exact=True).fill("Stella Stacks")
    owner.get_by_label("Email").fill("stella@example.com")
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Sign up").click()
    owner.wait_for_url(re.compile(r".*/platforms/new$"))
    owner.get_by_label("Name", exact=True).fill("Stack Co")
    owner.get_by_label("Slug", exact=False).fill("stack-co")
    owner.get_by_role("button", name="Create and provision").click()
    owner.wait_for_url(re.compile(r".*/platforms/[a-z0-9]+\?welcome=1$"), timeout=120_000)
    pid = re.search(r"/platforms/([a-z0-9]+)\?", owner.url).group(1)  # type: ignore[union-attr]

    nav = owner.get_by_role("navigation", name="Platform")
    nav.get_by_role("link", name="Stacks").click()
    owner.get_by_role("row").filter(has_text="saas-starter").get_by_role("link", name="Activate…").click()
    assert owner.get_by_text("rolled back").is_visible()
    _shot(owner, screenshots, "portal-stack-confirm")
    owner.get_by_role("button", name=re.compile(r"^Yes, activate")).click()
    owner.wait_for_url(re.compile(rf".*/platforms/{pid}/jobs/[A-Za-z0-9_-]+$"))
    # htmx follows the job every second until it has ended.
    owner.get_by_text("Done.").wait_for(timeout=120_000)
    assert owner.locator(".badge", has_text="COMPLETED").first.is_visible()
    _shot(owner, screenshots, "portal-stack-job")
    owner.get_by_role("link", name="Back to stacks and features").click()
    row = owner.get_by_role("row").filter(has_text="saas-starter").filter(has=owner.get_by_role("link", name="Upgrade"))
    assert row.locator(".badge", has_text="active").is_visible()
    _shot(owner, screenshots, "portal-stacks")

    nav.get_by_role("link", name="Billing").click()
    assert owner.locator(".facts").get_by_text("starter").is_visible()
    _shot(owner, screenshots, "portal-billing-plan")
    owner.get_by_role("link", name="Change to growth…").click()
    assert owner.get_by_text("$199.00 a month").is_visible()
    _shot(owner, screenshots, "portal-billing-change")
    # Keyboard only: the confirmation's button is reachable and pressed with Enter.
    owner.get_by_role("button", name="Yes, change to growth").focus()
    owner.keyboard.press("Enter")
    owner.wait_for_url(re.compile(rf".*/platforms/{pid}/billing\?changed=tier$"))
    assert owner.get_by_text("The tier was changed").is_visible()
    assert owner.locator(".facts").get_by_text("growth").is_visible()

    with httpx.Client(base_url=base) as http:  # what the local cloud would have metered
        events = [{"id": f"shot-{m}", "platformId": pid, "metric": m, "quantity": q} for m, q in (
            ("worker_invocations", 21_500_000), ("d1_rows_read", 40_000_000), ("d1_rows_written", 26_100_000),
            ("kv_reads", 12_000_000), ("kv_writes", 8_300_000))]
        sent = http.post("/api/v1/billing/usage/events", json={"events": events},
                         headers={"Authorization": f"Bearer {SERVICE_KEY}"})
        assert sent.status_code == 200, sent.text
    owner.get_by_role("navigation", name="Billing").get_by_role("link", name="Usage").click()
    assert owner.get_by_text("43.0%").is_visible()
    assert owner.locator("meter").first.is_visible()
    _shot(owner, screenshots, "portal-billing-usage")
    owner.get_by_role("navigation", name="Billing").get_by_role("link", name="Invoices").click()
    _shot(owner, screenshots, "portal-billing-invoices")
    owner.get_by_role("row").filter(has_text="subscription update").get_by_role("link").first.click()
    assert owner.get_by_role("heading", name="Lines").is_visible()
    _shot(owner, screenshots, "portal-billing-invoice")

    # The CLI's device flow, on IAM's page in the Portal's look, with the Portal's session.
    with httpx.Client(base_url=base) as http:
        code = http.post("/api/v1/iam/api/nno/device/code", data={"client_id": "nno-cli"}).json()
    owner.goto(str(code["verification_uri_complete"]))
    assert owner.get_by_text("stella@example.com").first.is_visible() and owner.get_by_text("nno-cli").is_visible()
    _shot(owner, screenshots, "portal-device-activate")
    owner.get_by_role("button", name="Approve").click()
    assert owner.get_by_text("You can return to your terminal").is_visible()
    with httpx.Client(base_url=base) as http:
        token = http.post("/api/v1/iam/api/nno/device/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": code["device_code"],
            "client_id": "nno-cli"})
        assert token.status_code == 200 and token.json()["access_token"], token.text

    owner.goto(f"{base}/platforms/{pid}")
    nav.get_by_role("link", name="Audit").click()
    owner.get_by_label("Action contains").fill("stack")
    owner.get_by_label("Action contains").press("Enter")
    owner.wait_for_url(re.compile(r".*/audit\?action=stack.*"))
    _shot(owner, screenshots, "portal-audit")
    assert not problems, problems


def _mailed(base: str, to: str, pattern: str) -> str:
    with httpx.Client(base_url=base) as http:
        resp = http.get("/api/v1/iam/api/nno/mail/outbox", params={"to": to},
                        headers={"Authorization": f"Bearer {SERVICE_KEY}"})
        assert resp.status_code == 200, resp.text
    for mail in resp.json()["data"]:
        found = re.search(pattern, str(mail["body"]))
        if found:
            return found.group(1)
    raise AssertionError(f"no mail to {to} matching {pattern}")


def test_invite_a_member_who_accepts(live: LiveServer, chromium: Any, screenshots: Path) -> None:
    """The owner invites from the Members page; the invitee follows the mail, proves the address with
    a magic link and accepts; the owner sees the new member and no pending invitation."""
    problems: list[str] = []
    owner = _page(chromium, problems)
    base = live.url
    owner.goto(base + "/sign-up")
    owner.get_by_label("Name", exact=True).fill("Ina Inviter")
    owner.get_by_label("Email").fill("ina@example.com")
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Sign up").click()
    owner.wait_for_url(re.compile(r".*/platforms/new$"))
    owner.get_by_label("Name", exact=True).fill("Team Co")
    owner.get_by_label("Slug", exact=False).fill("team-co")
    owner.get_by_role("button", name="Create and provision").click()
    owner.wait_for_url(re.compile(r".*/platforms/[a-z0-9]+\?welcome=1$"), timeout=120_000)
    pid = re.search(r"/platforms/([a-z0-9]+)\?", owner.url).group(1)  # type: ignore[union-attr]

    owner.get_by_role("navigation", name="Platform").get_by_role("link", name="Members").click()
    owner.get_by_label("Email").fill("joe@example.com")
    owner.get_by_label("Role").select_option("platform-admin")
    owner.get_by_role("button", name="Send invitation").click()
    owner.wait_for_url(re.compile(rf".*/platforms/{pid}/members\?invited=.*"))
    assert owner.get_by_role("row").filter(has_text="joe@example.com").is_visible()
    _shot(owner, screenshots, "portal-members-invite")

    invitee = _page(chromium, problems)
    invitee.goto(base + _mailed(base, "joe@example.com", r"(/invitations/accept\?token=\S+)"))
    invitee.wait_for_url(re.compile(r".*/sign-in\?next=.*"))
    invitee.locator("form[action='/sign-in/magic-link']").get_by_label("Email").fill("joe@example.com")
    invitee.get_by_role("button", name="Email me a link").click()
    invitee.get_by_text("on its way").wait_for()
    invitee.goto(base + _mailed(base, "joe@example.com", r"(/api/v1/iam/api/auth/magic-link/verify\?\S+)"))
    invitee.wait_for_url(re.compile(r".*/invitations/accept\?token=.*"))
    assert invitee.get_by_text("platform-admin").first.is_visible()
    _shot(invitee, screenshots, "portal-invitation-accept")
    invitee.get_by_role("button", name="Accept the invitation").click()
    assert invitee.get_by_text("You are now a").is_visible()

    owner.reload()
    assert owner.get_by_text("No pending invitations.").is_visible()
    assert owner.get_by_role("row").filter(has_text="platform-admin").count() == 2

    # The owner makes joe a plain member in place (htmx swaps his row), then removes him.
    joe = owner.get_by_role("row").filter(has_text="joe@example.com")
    joe.get_by_label("Role of joe@example.com").select_option("user")
    joe.get_by_role("button", name="Change role").click()
    owner.get_by_text("Now user.").wait_for()
    assert owner.get_by_role("row").filter(has_text="ina@example.com").get_by_text("owner stays").is_visible()
    owner.get_by_role("row").filter(has_text="joe@example.com").get_by_role("link", name="Remove").click()
    owner.wait_for_url(re.compile(rf".*/platforms/{pid}/members/[A-Za-z0-9_-]+/remove$"))
    assert owner.get_by_text("joe@example.com loses Team Co at once").is_visible()
    _shot(owner, screenshots, "portal-member-remove")
    owner.get_by_role("button", name="Yes, remove them").click()
    owner.wait_for_url(re.compile(rf".*/platforms/{pid}/members$"))
    assert owner.get_by_role("row").filter(has_text="joe@example.com").count() == 0
    assert not problems, problems
