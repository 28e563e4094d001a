"""The plan tiers (billing-cli-shell.md §2.2, DECISIONS 15): one source of truth for prices, the
count limits the Registry enforces (platforms, tenants, features) and the monthly usage Billing
includes before overage. `None` means unlimited.

Included usage beyond the documented rows (R2 storage and operations, KV reads and writes; the
docs cut them off) and every overage price are NNO's documented defaults, overridable in Billing's
configuration (`NNO_BILLING_INCLUDED`, `NNO_BILLING_OVERAGE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nno.kernel.errors import NNOError

TIER_NAMES: tuple[str, ...] = ("starter", "growth", "scale")

# Metered resources, in the order the dashboard lists them. Each is a count per month except
# `r2_storage_bytes`, a gauge whose monthly value is the highest daily reading.
METRICS: tuple[str, ...] = (
    "worker_invocations", "d1_rows_read", "d1_rows_written", "r2_storage_bytes", "r2_operations",
    "kv_reads", "kv_writes",
)
GAUGE_METRICS = frozenset({"r2_storage_bytes"})

GB = 1_000_000_000
M = 1_000_000


@dataclass(frozen=True)
class Overage:
    """`price_cents` for every started block of `block` units beyond the included amount."""

    block: int
    price_cents: int


@dataclass(frozen=True)
class Tier:
    name: str
    price_cents: int
    platforms: int | None
    tenants: int | None
    features: int | None
    included: dict[str, int] = field(default_factory=dict)

    def to_json(self, overage: dict[str, Overage]) -> dict[str, Any]:
        return {
            "tier": self.name, "priceCents": self.price_cents, "currency": "usd", "interval": "month",
            "limits": {"platforms": self.platforms, "tenants": self.tenants, "features": self.features},
            "included": dict(self.included),
            "overage": {m: {"block": o.block, "priceCents": o.price_cents} for m, o in overage.items()},
        }


TIERS: dict[str, Tier] = {
    "starter": Tier("starter", 4_900, 1, 3, 5, {
        "worker_invocations": 5 * M, "d1_rows_read": 25 * M, "d1_rows_written": 2_500_000,
        "r2_storage_bytes": 10 * GB, "r2_operations": 1 * M, "kv_reads": 10 * M, "kv_writes": 1 * M,
    }),
    "growth": Tier("growth", 19_900, 3, 20, None, {
        "worker_invocations": 50 * M, "d1_rows_read": 250 * M, "d1_rows_written": 25 * M,
        "r2_storage_bytes": 100 * GB, "r2_operations": 10 * M, "kv_reads": 100 * M, "kv_writes": 10 * M,
    }),
    "scale": Tier("scale", 79_900, None, None, None, {
        "worker_invocations": 500 * M, "d1_rows_read": 2_500 * M, "d1_rows_written": 250 * M,
        "r2_storage_bytes": 1_000 * GB, "r2_operations": 100 * M, "kv_reads": 1_000 * M, "kv_writes": 100 * M,
    }),
}

# Default overage prices (cents per started block): Cloudflare's list prices, rounded up to whole cents.
DEFAULT_OVERAGE: dict[str, Overage] = {
    "worker_invocations": Overage(M, 30),
    "d1_rows_read": Overage(M, 1),
    "d1_rows_written": Overage(M, 100),
    "r2_storage_bytes": Overage(GB, 2),
    "r2_operations": Overage(M, 450),
    "kv_reads": Overage(M, 50),
    "kv_writes": Overage(M, 500),
}

LIMIT_KINDS = ("platforms", "tenants", "features")
UPGRADE_PATH = "POST /api/v1/billing/subscription/change-tier"


def tier(name: str) -> Tier:
    return TIERS[name]


def limit(name: str, kind: str) -> int | None:
    """The count limit of `kind` (platforms, tenants, features) on tier `name`."""
    value: int | None = getattr(TIERS[name], kind)
    return value


def upgrade_for(name: str, kind: str, needed: int) -> str | None:
    """The smallest tier above `name` whose `kind` limit admits `needed`, or None."""
    for candidate in TIER_NAMES[TIER_NAMES.index(name) + 1:]:
        cap = limit(candidate, kind)
        if cap is None or cap >= needed:
            return candidate
    return None


def limit_error(name: str, kind: str, current: int, *, needed: int | None = None,
                message: str | None = None) -> NNOError:
    """The one error every quota answers with: 409 naming the limit and how to lift it. `needed`
    (default one more than `current`) is the count the upgrade must admit."""
    cap = limit(name, kind)
    upgrade = upgrade_for(name, kind, current + 1 if needed is None else needed)
    hint = (f"; upgrade to {upgrade} with {UPGRADE_PATH}" if upgrade else "")
    return NNOError(
        409, f"{kind[:-1].upper()}_LIMIT_REACHED",
        (message or f"Tier {name} allows {cap} {kind}") + hint,
        {"limit": cap, "current": current, "tier": name, "resource": kind,
         "upgradeTo": upgrade, "upgradePath": UPGRADE_PATH if upgrade else None},
    )


def check_count(name: str, kind: str, current: int) -> None:
    """Raise the quota error when one more `kind` would exceed tier `name`'s limit."""
    cap = limit(name, kind)
    if cap is not None and current >= cap:
        raise limit_error(name, kind, current)
