"""The `stripe` provider against Stripe's documented HTTP shapes (the SDK's httpx transport is
mocked), and the webhook: signatures checked (bad or replayed refused), each event applied once,
an older event never overwriting a newer one, dunning and cancellation driven by events."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import stripe

from nno.billing.stripe_provider import _is_proration
from nno.core import Core
from nno.kernel.config import Settings
from tests.billing.conftest import B, P, User, assert_error, platform_status

SECRET = "whsec_test_secret"
PRICES = {"starter": "price_starter", "growth": "price_growth", "scale": "price_scale"}
PRICE_CENTS = {"price_starter": 4900, "price_growth": 19900, "price_scale": 79900}
_seq = itertools.count(1)


class FakeStripe:
    """Stripe's REST API as the SDK calls it: form-encoded bodies, JSON answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        self.subs: dict[str, dict[str, Any]] = {}
        self.fail_next: int | None = None
        self.retrieved = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode())) if request.content else {}
        self.calls.append((request.method, request.url.path, form, dict(request.headers)))
        if self.fail_next:
            status, self.fail_next = self.fail_next, None
            return httpx.Response(status, json={"error": {"type": "card_error", "message": "declined"}})
        path = request.url.path
        if request.method == "POST" and path == "/v1/customers":
            return httpx.Response(200, json={"id": f"cus_{next(_seq)}", "object": "customer",
                                             "email": form.get("email"), "metadata": {}})
        if request.method == "POST" and path == "/v1/subscriptions":
            now = int(time.time())
            sid = f"sub_{next(_seq)}"
            self.subs[sid] = {
                "id": sid, "object": "subscription", "customer": form["customer"], "status": "active",
                "cancel_at_period_end": False, "trial_end": None, "metadata": {"tier": form.get("metadata[tier]")},
                "items": {"object": "list", "data": [{
                    "id": f"si_{next(_seq)}", "object": "subscription_item",
                    "price": {"id": form["items[0][price]"], "object": "price"},
                    "current_period_start": now, "current_period_end": now + 30 * 86400}]},
            }
            return httpx.Response(200, json=self.subs[sid])
        if request.method == "POST" and path == "/v1/invoices/create_preview":
            return httpx.Response(200, json=self.preview(form))
        if path.startswith("/v1/subscriptions/") and path.count("/") == 3:
            sub = self.subs[path.rsplit("/", 1)[1]]
            self.retrieved += request.method == "GET"
            if request.method == "POST":
                if form.get("cancel_at_period_end") == "true":
                    sub["cancel_at_period_end"] = True
                if "items[0][price]" in form:
                    sub["items"]["data"][0]["price"]["id"] = form["items[0][price]"]
            return httpx.Response(200, json=sub)
        return httpx.Response(404, json={"error": {"type": "invalid_request_error", "message": "no route"}})


    def preview(self, form: dict[str, str]) -> dict[str, Any]:
        """An invoice preview of a price swap with proration_behavior=always_invoice, shaped as
        Stripe documents it (API 2025-03-31.basil and later: the proration flag on the line's parent)."""
        sub = self.subs[form["subscription"]]
        item = sub["items"]["data"][0]
        assert form["subscription_details[items][0][id]"] == item["id"]
        assert form["subscription_details[proration_behavior]"] == "always_invoice"
        start, end = item["current_period_start"], item["current_period_end"]
        at = int(form["subscription_details[proration_date]"])
        old, new = item["price"]["id"], form["subscription_details[items][0][price]"]
        share = (end - at) / (end - start)
        amounts = [(-round(PRICE_CENTS[old] * share), f"Unused time on {old}"),
                   (round(PRICE_CENTS[new] * share), f"Remaining time on {new}")]
        total = sum(a for a, _ in amounts)
        lines = [{"id": f"il_tmp_{next(_seq)}", "object": "line_item", "amount": amount, "currency": "usd",
                  "description": text, "period": {"start": at, "end": end},
                  "parent": {"type": "subscription_item_details", "invoice_item_details": None,
                             "subscription_item_details": {"invoice_item": f"ii_{next(_seq)}", "proration": True,
                                                           "subscription": sub["id"], "subscription_item": item["id"]}}}
                 for amount, text in amounts]
        return {"id": f"upcoming_in_{next(_seq)}", "object": "invoice", "customer": sub["customer"],
                "currency": "usd", "subtotal": total, "total": total, "amount_due": max(0, total),
                "lines": {"object": "list", "data": lines, "has_more": False, "url": "/v1/invoices/upcoming/lines"}}


@pytest.fixture
def fake_stripe(monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    fake = FakeStripe()
    original = stripe.HTTPXClient

    class MockedClient(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._client_async = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))

    monkeypatch.setattr(stripe, "HTTPXClient", MockedClient)
    monkeypatch.setenv("NNO_BILLING_PROVIDER", "stripe")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_123")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("NNO_BILLING_STRIPE_PRICES", ",".join(f"{k}={v}" for k, v in PRICES.items()))
    return fake


@pytest.fixture
async def core(settings: Settings, fake_stripe: FakeStripe) -> AsyncIterator[Core]:
    instance = Core(settings, services=["iam", "registry", "billing"], with_edge=False)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


def signed(event: dict[str, Any], *, secret: str = SECRET, at: int | None = None) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(event).encode()
    ts = int(time.time()) if at is None else at
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={ts},v1={sig}", "content-type": "application/json"}


def event(kind: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {"id": f"evt_{next(_seq)}", "object": "event", "type": kind, "api_version": "2024-06-20",
            "created": int(time.time()) if created is None else created, "data": {"object": obj}}


async def deliver(client: httpx.AsyncClient, evt: dict[str, Any], **kw: Any) -> httpx.Response:
    payload, headers = signed(evt, **kw)
    return await client.post(f"{B}/webhooks/stripe", content=payload, headers=headers)


async def test_subscriptions_are_made_and_changed_in_stripe(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake_stripe: FakeStripe,
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    made = await subscribed(tier="starter")
    pid, sub = made["platformId"], made["subscription"]
    assert sub["provider"] == "stripe" and sub["customerId"].startswith("cus_") and sub["id"].startswith("sub_")
    creates = [c for c in fake_stripe.calls if c[0] == "POST" and c[1] in ("/v1/customers", "/v1/subscriptions")]
    assert [c[3].get("idempotency-key") for c in creates] == [f"nno-customer-{pid}", f"nno-subscription-{pid}"]
    assert creates[1][2]["items[0][price]"] == "price_starter"
    platform = (await client.get(f"{P}/{pid}", headers=service_headers)).json()
    assert platform["stripeCustomerId"] == sub["customerId"]

    r = await client.post(f"{B}/subscription/change-tier", json={"tier": "growth", "platformId": pid},
                          headers=service_headers)
    assert r.status_code == 200, r.text
    update = fake_stripe.calls[-1]
    assert update[1] == f"/v1/subscriptions/{sub['id']}"
    assert update[2]["items[0][price]"] == "price_growth" and update[2]["proration_behavior"] == "always_invoice"
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json()["tier"] == "growth"

    # Stripe refusing the change leaves the Registry's tier as it was.
    fake_stripe.fail_next = 402
    r = await client.post(f"{B}/subscription/change-tier", json={"tier": "scale", "platformId": pid},
                          headers=service_headers)
    assert_error(r, 502, "PAYMENT_PROVIDER_ERROR")
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json()["tier"] == "growth"

    r = await client.post(f"{B}/subscription/cancel", json={"platformId": pid}, headers=service_headers)
    assert r.status_code == 200, r.text
    assert fake_stripe.calls[-1][2] == {"cancel_at_period_end": "true"}
    # The local-ledger knobs are not Stripe's.
    assert_error(await client.post(f"{B}/test-clock/advance", json={"seconds": 60}, headers=service_headers),
                 409, "NOT_SUPPORTED")


async def test_webhook_signatures_and_replays_are_refused(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    sub = (await subscribed())["subscription"]
    evt = event("invoice.payment_failed", {"id": "in_1", "object": "invoice", "subscription": sub["id"]})
    assert_error(await deliver(client, evt, secret="whsec_wrong"), 400, "INVALID_SIGNATURE")
    assert_error(await deliver(client, evt, at=int(time.time()) - 3600), 400, "INVALID_SIGNATURE")
    payload, _ = signed(evt)
    assert_error(await client.post(f"{B}/webhooks/stripe", content=payload), 400, "INVALID_SIGNATURE")
    tampered, headers = signed(evt)
    assert_error(await client.post(f"{B}/webhooks/stripe", content=tampered.replace(b"in_1", b"in_2"),
                                   headers=headers), 400, "INVALID_SIGNATURE")
    got = (await client.get(f"{B}/subscription", params={"platformId": sub["platformId"]},
                            headers=service_headers)).json()
    assert got["status"] == "active"  # nothing applied


async def test_webhook_dunning_applies_each_event_once_and_in_order(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    made = await subscribed(owner)
    pid, sub = made["platformId"], made["subscription"]
    four_days_ago = int(time.time()) - 4 * 86400
    failed = event("invoice.payment_failed", {"id": "in_1", "object": "invoice", "subscription": sub["id"]},
                   created=four_days_ago)
    r = await deliver(client, failed)
    assert r.status_code == 200 and r.json()["applied"] is True
    again = await deliver(client, failed)
    assert again.status_code == 200 and again.json() == {"received": True, "duplicate": True}
    got = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=owner.headers)).json()
    assert got["status"] == "past_due" and got["pastDueSince"] == four_days_ago * 1000
    # The grace period (3 days here) is over: the scheduler suspends the platform.
    assert (await client.post(f"{B}/scheduler/run", headers=service_headers)).status_code == 200
    assert await platform_status(client, service_headers, pid) == "suspended"
    # Stripe delivers an older subscription.updated after a newer one: the newer state stands.
    item = {"object": "list", "data": [{"id": "si_x", "price": {"id": "price_growth"},
                                        "current_period_start": 1, "current_period_end": 2}]}
    newer = event("customer.subscription.updated", {"id": sub["id"], "object": "subscription", "status": "past_due",
                                                    "items": item, "cancel_at_period_end": False},
                  created=int(time.time()))
    older = event("customer.subscription.updated", {"id": sub["id"], "object": "subscription", "status": "active",
                                                    "cancel_at_period_end": True}, created=four_days_ago - 10)
    assert (await deliver(client, newer)).json()["applied"] is True
    assert (await deliver(client, older)).json().get("stale") is True
    got = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=owner.headers)).json()
    assert got["status"] == "past_due" and got["tier"] == "growth" and not got["cancelAtPeriodEnd"]
    # Paying restores the platform.
    paid = event("invoice.paid", {"id": "in_1", "object": "invoice", "subscription": sub["id"]})
    assert (await deliver(client, paid)).json()["applied"] is True
    assert await platform_status(client, service_headers, pid) == "active"
    got = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=owner.headers)).json()
    assert got["status"] == "active" and not got["suspendedForNonPayment"]


async def test_subscription_deleted_ends_a_cancelled_platform(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    made = await subscribed()
    pid, sub = made["platformId"], made["subscription"]
    await client.post(f"{B}/subscription/cancel", json={"platformId": pid}, headers=service_headers)
    assert await platform_status(client, service_headers, pid) == "pending_cancellation"
    ended = event("customer.subscription.deleted", {"id": sub["id"], "object": "subscription", "status": "canceled"})
    assert (await deliver(client, ended)).json()["applied"] is True
    assert await platform_status(client, service_headers, pid) == "cancelled"
    assert (await client.get(f"{B}/subscription", params={"platformId": pid},
                             headers=service_headers)).json()["status"] == "canceled"
    # Unknown subscriptions are acknowledged (Stripe stops retrying) and change nothing.
    stray = event("invoice.paid", {"id": "in_9", "object": "invoice", "subscription": "sub_unknown"})
    assert (await deliver(client, stray)).json() == {"received": True, "applied": False}


async def test_proration_preview_is_stripes_invoice_preview(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake_stripe: FakeStripe,
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    made = await subscribed(tier="starter")
    pid, sub = made["platformId"], made["subscription"]
    calls = len(fake_stripe.calls)
    resp = await client.get(f"{B}/subscription/proration-preview", params={"platformId": pid, "tier": "growth"},
                            headers=service_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    method, path, form, _ = fake_stripe.calls[-1]
    assert (method, path) == ("POST", "/v1/invoices/create_preview")
    assert form["subscription"] == sub["id"] and form["customer"] == sub["customerId"]
    assert form["subscription_details[items][0][price]"] == "price_growth"
    assert int(form["subscription_details[proration_date]"]) == body["prorationDate"] // 1000
    # Stripe's own lines and amount, not a local estimate.
    preview = fake_stripe.preview(form)
    assert body["provider"] == "stripe"
    assert [(x["description"], x["amountCents"], x["kind"]) for x in body["lines"]] == \
        [(x["description"], x["amount"], "proration") for x in preview["lines"]["data"]]
    assert body["amountDueNowCents"] == preview["amount_due"] > 0 and body["creditCents"] == 0
    assert body["nextInvoiceCents"] == 19900
    # A preview changes nothing: one read of the subscription and the preview, no update.
    assert [c[:2] for c in fake_stripe.calls[calls:]] == [("GET", f"/v1/subscriptions/{sub['id']}"),
                                                          ("POST", "/v1/invoices/create_preview")]
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json()["tier"] == "starter"
    # The change made at the preview's date is the one Stripe previewed.
    r = await client.post(f"{B}/subscription/change-tier", headers=service_headers,
                          json={"tier": "growth", "platformId": pid, "prorationDate": body["prorationDate"]})
    assert r.status_code == 200, r.text
    assert fake_stripe.calls[-1][2]["proration_date"] == form["subscription_details[proration_date]"]
    # Back on the same tier there is nothing to prorate; Stripe refusing a preview is the usual 502.
    same = await client.get(f"{B}/subscription/proration-preview", params={"platformId": pid, "tier": "growth"},
                            headers=service_headers)
    assert same.status_code == 200 and same.json()["lines"] == []
    fake_stripe.fail_next = 400
    assert_error(await client.get(f"{B}/subscription/proration-preview", params={"platformId": pid, "tier": "scale"},
                                  headers=service_headers), 502, "PAYMENT_PROVIDER_ERROR")


def test_older_api_versions_mark_prorations_on_the_line() -> None:
    assert _is_proration({"type": "subscription", "proration": True})
    assert not _is_proration({"type": "subscription", "proration": False})
    assert _is_proration({"parent": {"subscription_item_details": {"proration": True}}})
    assert not _is_proration({"parent": {"subscription_item_details": {"proration": False}}, "proration": True})
