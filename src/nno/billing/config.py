"""Billing's own configuration (environment, `NNO_BILLING_*`), read when the service starts.

Prices and included usage default to `nno.kernel.tiers`; `NNO_BILLING_OVERAGE` and
`NNO_BILLING_INCLUDED` override single entries, as comma-separated `key=value` pairs:
`NNO_BILLING_OVERAGE="worker_invocations=1000000:40,kv_reads=1000000:60"` (block:cents) and
`NNO_BILLING_INCLUDED="starter.worker_invocations=6000000"`.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nno.kernel.tiers import DEFAULT_OVERAGE, METRICS, TIERS, Overage, Tier


def _pairs(value: str) -> list[tuple[str, str]]:
    out = []
    for item in (p.strip() for p in value.split(",")):
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"expected key=value, got {item!r}")
        out.append((key.strip(), val.strip()))
    return out


def parse_overage(value: str) -> dict[str, Overage]:
    prices = dict(DEFAULT_OVERAGE)
    for metric, spec in _pairs(value):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}")
        block, sep, cents = spec.partition(":")
        if not sep or not block.isdigit() or not cents.isdigit() or int(block) <= 0:
            raise ValueError(f"overage price must be BLOCK:CENTS, got {spec!r}")
        prices[metric] = Overage(int(block), int(cents))
    return prices


def parse_included(value: str) -> dict[str, Tier]:
    tiers = dict(TIERS)
    for key, amount in _pairs(value):
        name, sep, metric = key.partition(".")
        if not sep or name not in tiers or metric not in METRICS or not amount.isdigit():
            raise ValueError(f"expected TIER.METRIC=COUNT, got {key}={amount}")
        tiers[name] = replace(tiers[name], included={**tiers[name].included, metric: int(amount)})
    return tiers


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # `local` (the ledger in Billing's database) or `stripe`.
    provider: str = Field(default="local", validation_alias="NNO_BILLING_PROVIDER")
    stripe_api_key: str | None = Field(default=None, validation_alias="STRIPE_SECRET_KEY")
    stripe_webhook_secret: str | None = Field(default=None, validation_alias="STRIPE_WEBHOOK_SECRET")
    # Stripe price ids per tier, `starter=price_...,growth=price_...,scale=price_...`.
    stripe_prices: str = Field(default="", validation_alias="NNO_BILLING_STRIPE_PRICES")
    trial_days: int = Field(default=0, ge=0, le=365, validation_alias="NNO_BILLING_TRIAL_DAYS")
    grace_days: float = Field(default=7.0, ge=0, validation_alias="NNO_BILLING_GRACE_DAYS")
    retry_hours: float = Field(default=72.0, gt=0, validation_alias="NNO_BILLING_RETRY_HOURS")
    scheduler: bool = Field(default=True, validation_alias="NNO_BILLING_SCHEDULER")
    tick_s: float = Field(default=60.0, gt=0, validation_alias="NNO_BILLING_TICK")
    lease_s: float = Field(default=120.0, gt=0, validation_alias="NNO_BILLING_LEASE")
    overage: str = Field(default="", validation_alias="NNO_BILLING_OVERAGE")
    included: str = Field(default="", validation_alias="NNO_BILLING_INCLUDED")

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        if value not in ("local", "stripe"):
            raise ValueError("NNO_BILLING_PROVIDER must be local or stripe")
        return value

    @field_validator("overage")
    @classmethod
    def _overage(cls, value: str) -> str:
        parse_overage(value)
        return value

    @field_validator("included")
    @classmethod
    def _included(cls, value: str) -> str:
        parse_included(value)
        return value

    @property
    def overage_prices(self) -> dict[str, Overage]:
        return parse_overage(self.overage)

    @property
    def tiers(self) -> dict[str, Tier]:
        return parse_included(self.included)

    @property
    def stripe_price_ids(self) -> dict[str, str]:
        return dict(_pairs(self.stripe_prices))
