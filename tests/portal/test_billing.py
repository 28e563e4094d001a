"""Billing pages from the Portal: the plan with change tier (its proration shown first) and cancel,
usage against the included amounts, invoices and one invoice; refusals for another platform, a plain
member and a form without its CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from hypothesis import given
from hypothesis import strategies as st

from nno.portal.web import amount, money
from tests.conftest import SERVICE_KEY
from tests.portal.conftest import Browser, add_member, user_id

SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}


async def _subscription(client: httpx.AsyncClient, pid: str) -> dict[str, object]:
    resp = await client.get("/api/v1/billing/subscription", params={"platformId": pid}, headers=SERVICE)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_plan_change_tier_usage_invoices_and_cancel(browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.sign_up("payer@example.com")
    pid = await browser.onboard("Payer", "payer")
    plan = await browser.get(f"/platforms/{pid}/billing")
    assert plan.status_code == 200 and "<strong>starter</strong>" in plan.text and "$49.00" in plan.text
    assert f'href="/platforms/{pid}/billing/change-tier?tier=growth"' in plan.text

    confirm = await browser.get(f"/platforms/{pid}/billing/change-tier?tier=growth")
    assert confirm.status_code == 200 and "from starter to growth" in confirm.text
    assert "$199.00 a month" in confirm.text and re.search(r"charged \$\d+\.\d\d now", confirm.text), confirm.text
    resp = await browser.post(f"/platforms/{pid}/billing/change-tier", {"tier": "growth"})
    assert resp.status_code == 303 and resp.headers["location"] == f"/platforms/{pid}/billing?changed=tier"
    assert (await _subscription(client, pid))["tier"] == "growth"
    assert "The tier was changed" in (await browser.get(resp.headers["location"])).text

    invoices = await browser.get(f"/platforms/{pid}/billing/invoices")
    assert invoices.status_code == 200
    assert "subscription update" in invoices.text and "subscription create" in invoices.text
    first = re.search(rf'href="/platforms/{pid}/billing/invoices/([A-Za-z0-9_]+)"', invoices.text)
    assert first
    one = await browser.get(f"/platforms/{pid}/billing/invoices/{first.group(1)}")
    assert one.status_code == 200 and "Lines" in one.text and "Amount due" in one.text
    assert (await browser.get(f"/platforms/{pid}/billing/invoices/in_nosuchinvoice")).status_code == 404

    ingest = await client.post("/api/v1/billing/usage/events", headers=SERVICE, json={"events": [
        {"id": "portal-usage-1", "platformId": pid, "metric": "kv_writes", "quantity": 5_000_000}]})
    assert ingest.status_code == 200, ingest.text
    usage = await browser.get(f"/platforms/{pid}/billing/usage")
    assert usage.status_code == 200 and "<meter" in usage.text and "kv writes" in usage.text
    # growth includes 10M KV writes: 5M is half of it.
    assert re.search(r"<span[^>]*>50(\.0+)?%</span>", usage.text), usage.text

    cancel = await browser.get(f"/platforms/{pid}/billing/cancel")
    assert cancel.status_code == 200 and "410 Gone" in cancel.text
    resp = await browser.post(f"/platforms/{pid}/billing/cancel", {})
    assert resp.status_code == 303
    assert (await _subscription(client, pid))["cancelAtPeriodEnd"] is True
    plan = await browser.get(resp.headers["location"])
    assert "cancelled at the end of the period" in plan.text and "(cancelled)" in plan.text
    assert "/billing/change-tier" not in plan.text and "/billing/cancel" not in plan.text


async def test_bad_input_is_refused_plainly(browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.sign_up("typo-payer@example.com")
    pid = await browser.onboard("Typo Payer", "typo-payer")
    assert (await browser.get(f"/platforms/{pid}/billing/change-tier?tier=platinum")).status_code == 404
    resp = await browser.post(f"/platforms/{pid}/billing/change-tier", {"tier": "platinum"})
    assert resp.status_code == 400 and "VALIDATION_ERROR" in resp.text
    assert (await browser.get(f"/platforms/{pid}/billing/invoices/../../x")).status_code == 404
    assert (await _subscription(client, pid))["tier"] == "starter"


async def test_another_platform_and_a_plain_member_cannot_change_the_plan(
        browser_factory: Callable[[], Browser], client: httpx.AsyncClient) -> None:
    owner, mallory, member = browser_factory(), browser_factory(), browser_factory()
    await owner.sign_up("bill-owner@example.com")
    pid = await owner.onboard("Billed", "billed")
    await mallory.sign_up("bill-mallory@example.com")
    await mallory.onboard("Other Bill", "other-bill")
    await member.sign_up("bill-member@example.com")
    await add_member(client, pid, await user_id(client, member), "user")
    for who in (mallory, member):
        for path in ("/billing", "/billing/usage", "/billing/invoices", "/billing/change-tier?tier=growth",
                     "/billing/cancel"):
            resp = await who.get(f"/platforms/{pid}{path}")
            assert resp.status_code in (403, 404) and "Billed" not in resp.text, path
        for path, form in (("/billing/change-tier", {"tier": "scale"}), ("/billing/cancel", {}),
                           ("/billing/payment-method", {}), ("/billing/invoices/in_x/pay", {})):
            resp = await who.post(f"/platforms/{pid}{path}", form)
            assert resp.status_code in (403, 404) and 'role="alert"' in resp.text, path
    for path, form in (("/billing/change-tier", {"tier": "scale"}), ("/billing/cancel", {})):
        assert (await owner.post(f"/platforms/{pid}{path}", form, csrf=False)).status_code == 403
    sub = await _subscription(client, pid)
    assert sub["tier"] == "starter" and sub["cancelAtPeriodEnd"] is False


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_money_reads_back_as_the_same_cents(cents: int) -> None:
    shown = money(cents)
    assert re.fullmatch(r"-?\$\d{1,3}(,\d{3})*\.\d\d", shown), shown
    assert round(float(shown.replace("$", "").replace(",", "")) * 100) == cents


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(["kv_writes", "r2_storage_bytes"]))
def test_amounts_are_short_and_never_far_off(value: int, metric: str) -> None:
    shown = amount(value, metric)
    assert 0 < len(shown) <= 16
    if metric.endswith("_bytes"):
        figure, unit = shown.split()
        scale = {"TB": 10**12, "GB": 10**9, "MB": 10**6, "kB": 10**3, "B": 1}[unit]
    else:
        units = {"T": 10**12, "B": 10**9, "M": 10**6}
        figure, scale = (shown[:-1], units[shown[-1]]) if shown[-1] in units else (shown, 1)
    assert "e" not in figure
    number = float(figure.replace(",", ""))
    # Three significant digits (or a whole number of the largest unit): within 0.5% of the true figure.
    assert abs(number * scale - value) <= max(0.005 * value, 1)


def test_amount_and_money_of_nothing() -> None:
    assert amount(None) == "unlimited" and amount("x") == "" and money("x") == "" and money(None) == ""


async def test_an_open_invoice_is_paid_from_its_page(browser_factory: Callable[[], Browser],
                                                     client: httpx.AsyncClient) -> None:
    owner, mallory = browser_factory(), browser_factory()
    await owner.sign_up("dunned@example.com")
    pid = await owner.onboard("Dunned", "dunned")
    declines = await client.put("/api/v1/billing/payment-method", headers=SERVICE,
                                json={"platformId": pid, "fails": True})
    assert declines.status_code == 200, declines.text
    assert (await owner.post(f"/platforms/{pid}/billing/change-tier", {"tier": "growth"})).status_code == 303
    invoices = await client.get("/api/v1/billing/invoices", params={"platformId": pid}, headers=SERVICE)
    open_one = next(i for i in invoices.json()["data"] if i["status"] == "open")
    page = await owner.get(f"/platforms/{pid}/billing/invoices/{open_one['id']}")
    assert "This invoice is open" in page.text and f"/invoices/{open_one['id']}/pay" in page.text
    assert "A payment failed" in (await owner.get(f"/platforms/{pid}/billing")).text
    declined = await owner.post(f"/platforms/{pid}/billing/invoices/{open_one['id']}/pay", {})
    assert declined.status_code == 402 and "PAYMENT_FAILED" in declined.text
    await mallory.sign_up("dunning-mallory@example.com")
    assert (await mallory.post(f"/platforms/{pid}/billing/invoices/{open_one['id']}/pay", {})).status_code == 404
    assert (await owner.post(f"/platforms/{pid}/billing/invoices/{open_one['id']}/pay", {},
                             csrf=False)).status_code == 403
    refused = await mallory.post(f"/platforms/{pid}/billing/payment-method", {"invoice": open_one["id"]})
    assert refused.status_code == 404
    fixed = await owner.post(f"/platforms/{pid}/billing/payment-method", {"invoice": open_one["id"]})
    assert fixed.status_code == 303 and fixed.headers["location"].endswith(f"/invoices/{open_one['id']}?paid=1")
    page = await owner.get(fixed.headers["location"])
    assert "Paid. Thank you." in page.text and "s-paid" in page.text and "/pay" not in page.text
    again = await owner.post(f"/platforms/{pid}/billing/invoices/{open_one['id']}/pay", {})
    assert again.status_code == 409 and "INVOICE_NOT_OPEN" in again.text
