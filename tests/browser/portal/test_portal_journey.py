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
    assert owner.get_by_role("link", name="Blue Team").is_visible()
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
