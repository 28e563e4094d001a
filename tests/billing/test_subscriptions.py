"""Subscriptions on the local ledger: start, plans, cancel at period end, tier changes with
proration, and who may do what."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.billing.conftest import DAY, B, P, User, advance, assert_error, invoices, platform_status


async def test_plans_are_the_documented_tiers(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    resp = await client.get(f"{B}/plans", headers=service_headers)
    assert resp.status_code == 200, resp.text
    plans = {p["tier"]: p for p in resp.json()["data"]}
    assert [plans[t]["priceCents"] for t in ("starter", "growth", "scale")] == [4900, 19900, 79900]
    assert plans["starter"]["limits"] == {"platforms": 1, "tenants": 3, "features": 5}
    assert plans["growth"]["limits"] == {"platforms": 3, "tenants": 20, "features": None}
    assert plans["scale"]["limits"] == {"platforms": None, "tenants": None, "features": None}
    assert plans["growth"]["included"]["worker_invocations"] == 50_000_000
    assert plans["scale"]["included"]["d1_rows_read"] == 2_500_000_000


async def test_start_invoices_the_first_month_and_fills_the_registry(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    made = await subscribed(tier="growth")
    pid, sub = made["platformId"], made["subscription"]
    assert sub["status"] == "active" and sub["tier"] == "growth"
    platform = (await client.get(f"{P}/{pid}", headers=service_headers)).json()
    assert platform["stripeCustomerId"] == sub["customerId"]
    invs = await invoices(client, service_headers, pid)
    assert [(i["reason"], i["status"], i["amountDueCents"]) for i in invs] == [("subscription_create", "paid", 19900)]
    # Starting again is idempotent.
    again = await client.post(f"{B}/customers", json={"platformId": pid, "tier": "growth"}, headers=service_headers)
    assert again.status_code == 201 and again.json()["id"] == sub["id"]


async def test_reserved_create_is_501(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    assert_error(await client.post(f"{B}/subscription", headers=service_headers), 501, "NOT_IMPLEMENTED")


async def test_cancel_runs_to_period_end_then_the_platform_is_cancelled(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    pid = (await subscribed(owner))["platformId"]
    resp = await client.post(f"{B}/subscription/cancel", params={"platformId": pid}, headers=owner.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "pending_cancellation" and resp.json()["status"] == "active"
    assert await platform_status(client, service_headers, pid) == "pending_cancellation"
    await advance(client, service_headers, 20)
    assert await platform_status(client, service_headers, pid) == "pending_cancellation"
    await advance(client, service_headers, 12)
    assert await platform_status(client, service_headers, pid) == "cancelled"
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=service_headers)).json()
    assert sub["status"] == "canceled"
    # No renewal invoice after cancelling.
    assert [i["reason"] for i in await invoices(client, service_headers, pid)] == ["subscription_create"]


async def test_upgrade_prorates_and_changes_quotas_at_once(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    made = await subscribed(owner)
    pid, sub = made["platformId"], made["subscription"]
    await advance(client, service_headers, 10)
    preview = await client.get(f"{B}/subscription/proration-preview", params={"platformId": pid, "tier": "growth"},
                               headers=owner.headers)
    assert preview.status_code == 200, preview.text
    lines = preview.json()["lines"]
    span = sub["currentPeriodEnd"] - sub["currentPeriodStart"]
    at = preview.json()["prorationDate"]
    remaining = sub["currentPeriodEnd"] - at
    assert lines[0]["amountCents"] == -round(4900 * remaining / span)
    assert lines[1]["amountCents"] == round(19900 * remaining / span)
    resp = await client.post(f"{B}/subscription/change-tier", json={"tier": "growth", "platformId": pid},
                             headers=owner.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["tier"] == "growth"
    platform = (await client.get(f"{P}/{pid}", headers=service_headers)).json()
    assert platform["tier"] == "growth"
    invs = await invoices(client, service_headers, pid)
    assert invs[0]["reason"] == "subscription_update" and invs[0]["status"] == "paid"
    assert abs(invs[0]["amountDueCents"] - sum(x["amountCents"] for x in lines)) <= 2
    # Tenants: growth allows 20 (starter 3).
    for i in range(5):
        r = await client.post(f"{P}/{pid}/tenants", json={"name": f"T{i}", "slug": f"t-{i}"}, headers=service_headers)
        assert r.status_code == 201, r.text


async def test_downgrade_refused_when_the_platform_outgrew_the_tier(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed(tier="growth"))["platformId"]
    for i in range(4):
        r = await client.post(f"{P}/{pid}/tenants", json={"name": f"T{i}", "slug": f"t-{i}"}, headers=service_headers)
        assert r.status_code == 201, r.text
    resp = await client.post(f"{B}/subscription/change-tier", json={"tier": "starter", "platformId": pid},
                             headers=service_headers)
    assert_error(resp, 409, "TENANT_LIMIT_REACHED")
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=service_headers)).json()
    assert sub["tier"] == "growth"
    assert [i["reason"] for i in await invoices(client, service_headers, pid)] == ["subscription_create"]


async def test_downgrade_credits_the_next_invoice(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed(tier="scale"))["platformId"]
    await advance(client, service_headers, 15)
    resp = await client.post(f"{B}/subscription/change-tier", json={"tier": "growth", "platformId": pid},
                             headers=service_headers)
    assert resp.status_code == 200, resp.text
    credit_invoice = (await invoices(client, service_headers, pid))[0]
    assert credit_invoice["amountDueCents"] == 0 and credit_invoice["subtotalCents"] < 0
    await advance(client, service_headers, 20)
    renewal = (await invoices(client, service_headers, pid))[0]
    assert renewal["reason"] == "subscription_cycle"
    assert renewal["creditAppliedCents"] == min(19900, -credit_invoice["subtotalCents"])
    assert renewal["amountDueCents"] == max(0, 19900 + credit_invoice["subtotalCents"])


async def test_members_read_admins_change_others_never_reach(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner, stranger, member = await make_user("owner"), await make_user("stranger"), await make_user("member")
    pid = (await subscribed(owner))["platformId"]
    other = (await subscribed(stranger))["platformId"]
    r = await client.post(f"{IAM_MEMBERS}", json={"platformId": pid, "userId": member.id, "role": "user"},
                          headers=service_headers)
    assert r.status_code in (200, 201), r.text
    for path in ("/subscription", "/usage", "/invoices", "/usage/history", "/audit"):
        assert (await client.get(f"{B}{path}", params={"platformId": pid}, headers=owner.headers)).status_code == 200
        assert (await client.get(f"{B}{path}", params={"platformId": pid}, headers=member.headers)).status_code == 200
        assert_error(await client.get(f"{B}{path}", params={"platformId": pid}, headers=stranger.headers), 404)
    assert_error(await client.get(f"{B}/subscription/proration-preview",
                                  params={"platformId": pid, "tier": "growth"}, headers=stranger.headers), 404)
    for path, body in (("/subscription/cancel", {}), ("/subscription/change-tier", {"tier": "growth"})):
        assert_error(await client.post(f"{B}{path}", params={"platformId": pid}, json=body,
                                       headers=stranger.headers), 404)
        assert_error(await client.post(f"{B}{path}", params={"platformId": pid}, json=body,
                                       headers=member.headers), 403)
    assert_error(await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": False},
                                  headers=stranger.headers), 404)
    # Operator-only knobs.
    assert_error(await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": True},
                                  headers=owner.headers), 403)
    assert_error(await client.post(f"{B}/test-clock/advance", json={"seconds": 10}, headers=owner.headers), 403)
    assert_error(await client.post(f"{B}/scheduler/run", headers=owner.headers), 403)
    assert_error(await client.post(f"{B}/usage/events", json={"events": []}, headers=owner.headers), 403)
    assert_error(await client.post(f"{B}/customers", json={"platformId": other}, headers=owner.headers), 403)
    assert_error(await client.get(f"{B}/subscription", params={"platformId": pid}), 401)
    # Nothing changed on the platform the others tried.
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=owner.headers)).json()
    assert sub["tier"] == "starter" and not sub["cancelAtPeriodEnd"]


IAM_MEMBERS = "/api/v1/iam/api/nno/platform-members"


async def test_concurrent_starts_make_one_subscription(client: httpx.AsyncClient,
                                                       service_headers: dict[str, str]) -> None:
    resp = await client.post(P, json={"name": "Twice", "slug": "twice-started"}, headers=service_headers)
    pid = resp.json()["id"]
    answers = await asyncio.gather(*(client.post(f"{B}/customers", json={"platformId": pid},
                                                 headers=service_headers) for _ in range(4)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(await invoices(client, service_headers, pid)) == 1


async def test_a_change_at_the_previews_date_is_charged_as_previewed(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    made = await subscribed()
    pid, sub = made["platformId"], made["subscription"]
    await advance(client, service_headers, 7)
    preview = (await client.get(f"{B}/subscription/proration-preview", params={"platformId": pid, "tier": "scale"},
                                headers=service_headers)).json()
    await advance(client, service_headers, 2)  # the owner thinks it over
    for bad in (sub["currentPeriodStart"] - 1, preview["prorationDate"] + 30 * DAY * 1000, True, "soon"):
        r = await client.post(f"{B}/subscription/change-tier", headers=service_headers,
                              json={"tier": "scale", "platformId": pid, "prorationDate": bad})
        assert_error(r, 400, "VALIDATION_ERROR")
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json()["tier"] == "starter"
    r = await client.post(f"{B}/subscription/change-tier", headers=service_headers,
                          json={"tier": "scale", "platformId": pid, "prorationDate": preview["prorationDate"]})
    assert r.status_code == 200, r.text
    charged = (await invoices(client, service_headers, pid))[0]
    assert charged["reason"] == "subscription_update"
    assert charged["lines"] == preview["lines"] and charged["amountDueCents"] == preview["amountDueNowCents"]
