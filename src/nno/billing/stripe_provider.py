"""The `stripe` provider, on the official SDK (async, over httpx). Stripe runs the ledger: it
invoices, prorates, retries payments and ends periods; Billing mirrors it from webhooks.

Every create carries an idempotency key derived from the platform, so a retried onboarding never
makes a second customer or subscription.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import stripe

from nno.billing.config import BillingSettings
from nno.billing.ledger import Line
from nno.billing.provider import ProviderError, ProviderPreview, ProviderSubscription
from nno.kernel.tiers import TIER_NAMES

STATUS_MAP = {"active": "active", "trialing": "trialing", "past_due": "past_due", "unpaid": "past_due",
              "incomplete": "past_due", "canceled": "canceled", "incomplete_expired": "canceled"}


def _period(sub: Any, key: str) -> int:
    """Period bounds in ms; newer API versions keep them on the subscription item."""
    data = sub.to_dict() if hasattr(sub, "to_dict") else dict(sub)
    value = data.get(key)
    if value is None:
        items = (data.get("items") or {}).get("data") or []
        value = items[0].get(key) if items else 0
    return int(value or 0) * 1000


@contextlib.contextmanager
def _stripe_errors() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        raise ProviderError(f"Stripe: {exc.user_message or exc.__class__.__name__}") from exc


class StripeProvider:
    name = "stripe"
    runs_ledger = False

    def __init__(self, settings: BillingSettings, http_client: stripe.HTTPClient | None = None) -> None:
        if not settings.stripe_api_key:
            raise ValueError("NNO_BILLING_PROVIDER=stripe needs STRIPE_SECRET_KEY")
        prices = settings.stripe_price_ids
        missing = [t for t in TIER_NAMES if t not in prices]
        if missing:
            raise ValueError(f"NNO_BILLING_STRIPE_PRICES lacks a price id for {', '.join(missing)}")
        self.prices = prices
        self.http = http_client or stripe.HTTPXClient()
        self.client = stripe.StripeClient(settings.stripe_api_key, http_client=self.http, max_network_retries=2)

    async def create_customer(self, platform_id: str, email: str | None) -> str:
        params: dict[str, Any] = {"metadata": {"platformId": platform_id}}
        if email:
            params["email"] = email
        with _stripe_errors():
            customer = await self.client.v1.customers.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": f"nno-customer-{platform_id}"})
        return str(customer.id)

    async def create_subscription(self, customer_id: str, platform_id: str, tier: str, now: int,
                                  trial_end: int | None) -> ProviderSubscription:
        params: dict[str, Any] = {"customer": customer_id, "items": [{"price": self.prices[tier]}],
                                  "metadata": {"platformId": platform_id, "tier": tier}}
        if trial_end is not None:
            params["trial_end"] = trial_end // 1000
        with _stripe_errors():
            sub = await self.client.v1.subscriptions.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": f"nno-subscription-{platform_id}"})
        trial = sub.to_dict().get("trial_end")
        return ProviderSubscription(str(sub.id), STATUS_MAP.get(str(sub.status), "past_due"),
                                    _period(sub, "current_period_start"), _period(sub, "current_period_end"),
                                    int(trial) * 1000 if trial else None)

    async def cancel_at_period_end(self, subscription_id: str) -> None:
        with _stripe_errors():
            await self.client.v1.subscriptions.update_async(subscription_id, {"cancel_at_period_end": True})

    async def change_tier(self, subscription_id: str, tier: str, at: int) -> None:
        """Swap the subscription's price; Stripe prorates from `at` and invoices the difference now."""
        with _stripe_errors():
            sub = await self.client.v1.subscriptions.retrieve_async(subscription_id)
            item_id = sub["items"]["data"][0]["id"]
            await self.client.v1.subscriptions.update_async(subscription_id, {
                "items": [{"id": item_id, "price": self.prices[tier]}],
                "proration_behavior": "always_invoice", "proration_date": at // 1000,
                "metadata": {"tier": tier},
            })

    async def preview_change(self, subscription_id: str, tier: str, at: int) -> ProviderPreview:
        """Stripe's invoice preview (`POST /v1/invoices/create_preview`) of the same price swap
        `change_tier` makes, at the same proration date."""
        with _stripe_errors():
            sub = await self.client.v1.subscriptions.retrieve_async(subscription_id)
            item_id = sub["items"]["data"][0]["id"]
            invoice = await self.client.v1.invoices.create_preview_async({
                "customer": str(sub["customer"]), "subscription": subscription_id,
                "subscription_details": {"items": [{"id": item_id, "price": self.prices[tier]}],
                                         "proration_behavior": "always_invoice", "proration_date": at // 1000},
            })
        data = invoice.to_dict()
        lines = [Line(str(line.get("description") or "Proration"), int(line.get("amount") or 0), "proration")
                 for line in (data.get("lines") or {}).get("data") or [] if _is_proration(line)]
        return ProviderPreview(lines, int(data.get("amount_due") or 0))

    async def close(self) -> None:
        await self.http.close_async()


def _is_proration(line: dict[str, Any]) -> bool:
    """Newer API versions mark a proration on the line's parent; older ones on the line itself."""
    parent = line.get("parent") or {}
    for key in ("subscription_item_details", "invoice_item_details"):
        details = parent.get(key) or {}
        if "proration" in details:
            return bool(details["proration"])
    return bool(line.get("proration"))
