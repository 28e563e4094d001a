"""Billing providers. `local` keeps everything in Billing's own database (it *is* the ledger: the
service runs periods, invoices and payment attempts itself on its advanceable clock); `stripe`
creates the customer and subscription in Stripe and learns invoices and statuses from webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nno.billing.ledger import Line, add_month
from nno.kernel.ids import new_id


class ProviderError(Exception):
    """The payment provider refused or could not be reached; Billing answers 502 and changes nothing."""


@dataclass(frozen=True)
class ProviderSubscription:
    id: str
    status: str
    period_start: int
    period_end: int
    trial_end: int | None


@dataclass(frozen=True)
class ProviderPreview:
    """A tier change as the provider would invoice it now: its proration lines and the amount it
    would charge (after any customer credit)."""

    lines: list[Line]
    amount_due_cents: int


class Provider(Protocol):
    name: str

    @property
    def runs_ledger(self) -> bool:
        """True when Billing itself invoices, charges and ends periods (the local provider)."""
        ...

    async def create_customer(self, platform_id: str, email: str | None) -> str: ...

    async def create_subscription(self, customer_id: str, platform_id: str, tier: str, now: int,
                                  trial_end: int | None) -> ProviderSubscription: ...

    async def cancel_at_period_end(self, subscription_id: str) -> None: ...

    async def change_tier(self, subscription_id: str, tier: str, at: int) -> None: ...

    async def preview_change(self, subscription_id: str, tier: str, at: int) -> ProviderPreview | None:
        """The provider's own proration of a tier change at `at`; None when Billing's ledger prorates."""
        ...

    async def close(self) -> None: ...


class LocalProvider:
    name = "local"
    runs_ledger = True

    async def create_customer(self, platform_id: str, email: str | None) -> str:
        return f"cus_{new_id(14)}"

    async def create_subscription(self, customer_id: str, platform_id: str, tier: str, now: int,
                                  trial_end: int | None) -> ProviderSubscription:
        if trial_end is not None:
            return ProviderSubscription(f"sub_{new_id(14)}", "trialing", now, trial_end, trial_end)
        return ProviderSubscription(f"sub_{new_id(14)}", "active", now, add_month(now), None)

    async def cancel_at_period_end(self, subscription_id: str) -> None:
        return None

    async def change_tier(self, subscription_id: str, tier: str, at: int) -> None:
        return None

    async def preview_change(self, subscription_id: str, tier: str, at: int) -> ProviderPreview | None:
        return None

    async def close(self) -> None:
        return None
