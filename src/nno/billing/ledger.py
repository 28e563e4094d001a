"""Billing arithmetic, without I/O: monthly periods, Stripe-style proration, overage and invoice
totals. Every amount is integer cents.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nno.kernel.tiers import GAUGE_METRICS, METRICS, Overage, Tier


def add_month(ms: int, anchor_day: int | None = None) -> int:
    """One calendar month after `ms` (UTC), keeping the anchor day, clamped to the month's last
    day as Stripe does (Jan 31 → Feb 28 → Mar 31)."""
    secs, millis = divmod(ms, 1000)  # integer arithmetic: a float timestamp loses milliseconds
    dt = datetime.fromtimestamp(secs, UTC)
    year, month = (dt.year + 1, 1) if dt.month == 12 else (dt.year, dt.month + 1)
    day = min(anchor_day or dt.day, calendar.monthrange(year, month)[1])
    return calendar.timegm(dt.replace(year=year, month=month, day=day).timetuple()) * 1000 + millis


def anchor_day(ms: int) -> int:
    return datetime.fromtimestamp(ms / 1000, UTC).day


def day_key(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def month_key(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")


@dataclass(frozen=True)
class Line:
    description: str
    amount_cents: int
    kind: str  # subscription | proration | overage
    metric: str | None = None
    quantity: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description, "amountCents": self.amount_cents, "kind": self.kind}
        if self.metric is not None:
            out.update(metric=self.metric, quantity=self.quantity)
        return out


def proration_lines(old: Tier, new: Tier, period_start: int, period_end: int, at: int) -> list[Line]:
    """Stripe's `create_prorations`: a credit for the unused time on the old price and a charge
    for the remaining time on the new one, each rounded to the cent."""
    span = period_end - period_start
    remaining = max(0, min(period_end - at, span))
    if span <= 0 or remaining == 0 or old.name == new.name:
        return []
    credit = -round(old.price_cents * remaining / span)
    charge = round(new.price_cents * remaining / span)
    return [
        Line(f"Unused time on {old.name}", credit, "proration"),
        Line(f"Remaining time on {new.name}", charge, "proration"),
    ]


def overage_cents(quantity: int, included: int, price: Overage) -> int:
    """`price` for every started block beyond `included`."""
    over = quantity - included
    if over <= 0:
        return 0
    return -(-over // price.block) * price.price_cents


def overage_lines(tier: Tier, usage: dict[str, int], prices: dict[str, Overage]) -> list[Line]:
    lines = []
    for metric in METRICS:
        qty = usage.get(metric, 0)
        amount = overage_cents(qty, tier.included.get(metric, 0), prices[metric])
        if amount:
            lines.append(Line(f"{metric} beyond {tier.included.get(metric, 0)} included", amount, "overage",
                              metric, qty - tier.included.get(metric, 0)))
    return lines


def apply_balance(subtotal: int, balance: int) -> tuple[int, int, int]:
    """Apply a customer balance (negative = credit) to an invoice subtotal, as Stripe does.
    Returns (amount due, credit applied, new balance); a negative subtotal becomes credit."""
    total = subtotal + balance
    if total >= 0:
        return total, subtotal - total if balance < 0 else 0, 0
    return 0, subtotal if subtotal > 0 else 0, total


def is_gauge(metric: str) -> bool:
    return metric in GAUGE_METRICS
