"""Dunning on the local ledger: a declined renewal makes the subscription past_due, the platform is
suspended once the grace period (3 days in these tests) is over, and paying restores it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from nno.kernel.config import Settings
from tests.billing.conftest import B, User, advance, assert_error, invoices, platform_status
from tests.conftest import running_core


async def _audit(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> list[str]:
    resp = await client.get(f"{B}/audit", params={"platformId": pid, "limit": 100}, headers=headers)
    assert resp.status_code == 200, resp.text
    return [a["action"] for a in resp.json()["data"]]


async def test_missed_payment_suspends_after_grace_and_paying_restores(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    pid = (await subscribed(owner))["platformId"]
    r = await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": True}, headers=service_headers)
    assert r.status_code == 200, r.text
    await advance(client, service_headers, 31)
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=owner.headers)).json()
    assert sub["status"] == "past_due"
    renewal = (await invoices(client, service_headers, pid))[0]
    assert renewal["status"] == "open" and renewal["attemptCount"] == 1
    assert await platform_status(client, service_headers, pid) == "active"

    await advance(client, service_headers, 2)  # within the grace period; one retry (every 24 h) declined
    assert await platform_status(client, service_headers, pid) == "active"
    assert (await invoices(client, service_headers, pid))[0]["attemptCount"] == 2

    await advance(client, service_headers, 1.5)
    assert await platform_status(client, service_headers, pid) == "suspended"

    # Paying by hand with the declined card still fails and changes nothing.
    assert_error(await client.post(f"{B}/invoices/{renewal['id']}/pay", params={"platformId": pid},
                                   headers=owner.headers), 402, "PAYMENT_FAILED")
    assert await platform_status(client, service_headers, pid) == "suspended"

    # A working card: the open invoice is paid at once and the platform comes back.
    r = await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": False}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert await platform_status(client, service_headers, pid) == "active"
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=owner.headers)).json()
    assert sub["status"] == "active" and not sub["suspendedForNonPayment"]
    assert (await invoices(client, service_headers, pid))[0]["status"] == "paid"
    actions = await _audit(client, service_headers, pid)
    for expected in ("invoice.payment_failed", "subscription.past_due", "platform.suspend_requested",
                     "platform.suspend", "invoice.paid", "platform.restore_requested", "platform.restore",
                     "subscription.reactivated", "payment_method.update"):
        assert expected in actions, (expected, actions)
    # The Registry audited the two transitions as a service.
    events = await client.get(f"/api/v1/platforms/{pid}/lifecycle-events", headers=service_headers)
    moves = [(e["fromStatus"], e["toStatus"]) for e in events.json()["data"]]
    assert ("active", "suspended") in moves and ("suspended", "active") in moves


async def test_paying_within_grace_never_suspends(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed())["platformId"]
    await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": True}, headers=service_headers)
    await advance(client, service_headers, 31)
    inv = (await invoices(client, service_headers, pid))[0]
    await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": False}, headers=service_headers)
    assert (await invoices(client, service_headers, pid))[0]["id"] == inv["id"]
    assert (await invoices(client, service_headers, pid))[0]["status"] == "paid"
    await advance(client, service_headers, 5)
    assert await platform_status(client, service_headers, pid) == "active"
    assert "platform.suspend_requested" not in await _audit(client, service_headers, pid)


async def test_an_unreachable_registry_delays_the_suspension_but_does_not_lose_it(
        client: httpx.AsyncClient, service_headers: dict[str, str], core: Any,
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed())["platformId"]
    await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": True}, headers=service_headers)
    await advance(client, service_headers, 31)
    registry = core.bindings.get("registry")
    core.bindings._bindings.pop("registry")  # the Registry is down
    try:
        await advance(client, service_headers, 4)
    finally:
        core.bindings._bindings["registry"] = registry
    assert await platform_status(client, service_headers, pid) == "active"
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=service_headers)).json()
    assert sub["suspendedForNonPayment"]
    r = await client.post(f"{B}/scheduler/run", headers=service_headers)
    assert r.status_code == 200, r.text
    assert await platform_status(client, service_headers, pid) == "suspended"


async def test_an_invoice_is_paid_only_through_its_own_platform(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner, stranger = await make_user("owner"), await make_user("stranger")
    pid = (await subscribed(owner))["platformId"]
    theirs = (await subscribed(stranger))["platformId"]
    await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": True}, headers=service_headers)
    await advance(client, service_headers, 31)
    open_invoice = (await invoices(client, service_headers, pid))[0]
    assert open_invoice["status"] == "open"
    # The stranger can neither reach the owner's platform nor pay its invoice through their own.
    assert_error(await client.post(f"{B}/invoices/{open_invoice['id']}/pay", params={"platformId": pid},
                                   headers=stranger.headers), 404)
    assert_error(await client.post(f"{B}/invoices/{open_invoice['id']}/pay", params={"platformId": theirs},
                                   headers=stranger.headers), 404, "NOT_FOUND")
    assert (await invoices(client, service_headers, pid))[0]["attemptCount"] == open_invoice["attemptCount"]
    await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": False}, headers=service_headers)
    assert_error(await client.post(f"{B}/invoices/{open_invoice['id']}/pay", params={"platformId": pid},
                                   headers=owner.headers), 409, "INVOICE_NOT_OPEN")


async def test_a_suspended_platform_is_451_except_for_paying_its_bill(
        make_settings: Callable[..., Settings], service_headers: dict[str, str]) -> None:
    settings = make_settings(auth_cache_ttl_s=0, status_cache_ttl_s=0)
    async with running_core(settings) as core, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=core.asgi), base_url="http://127.0.0.1:8787") as client:
        signed = await client.post("/api/v1/iam/api/auth/sign-up/email",
                                   json={"email": "payer@example.com", "password": "correct-horse-9", "name": "P"})
        client.cookies.clear()
        owner = {"Authorization": f"Bearer {signed.json()['token']}"}
        made = await client.post("/api/v1/platforms", headers=service_headers, json={
            "name": "Late", "slug": "late-payer", "ownerUserId": signed.json()["user"]["id"]})
        pid = made.json()["id"]
        for action in ("bootstrap", "complete"):
            await client.post(f"/api/v1/platforms/{pid}/lifecycle", json={"action": action}, headers=service_headers)
        r = await client.post(f"{B}/customers", json={"platformId": pid}, headers=service_headers)
        assert r.status_code == 201, r.text
        r = await client.post("/api/v1/iam/api/nno/platform-members", headers=service_headers, json={
            "platformId": pid, "userId": signed.json()["user"]["id"], "role": "platform-admin"})
        assert r.status_code in (200, 201), r.text
        r = await client.post("/api/v1/iam/api/nno/session/active-platform", json={"platformId": pid}, headers=owner)
        assert r.status_code == 200, r.text
        await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": True}, headers=service_headers)
        await advance(client, service_headers, 31)
        await advance(client, service_headers, 4)
        assert await platform_status(client, service_headers, pid) == "suspended"
        assert_error(await client.get(f"/api/v1/platforms/{pid}", headers=owner), 451, "PLATFORM_SUSPENDED")
        bill = await client.get(f"{B}/invoices", params={"platformId": pid}, headers=owner)
        assert bill.status_code == 200 and bill.json()["data"][0]["status"] == "open"
        r = await client.put(f"{B}/payment-method", json={"platformId": pid, "fails": False}, headers=owner)
        assert r.status_code == 200, r.text
        assert (await client.get(f"/api/v1/platforms/{pid}", headers=owner)).status_code == 200
