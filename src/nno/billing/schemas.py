"""Billing request bodies (camelCase, as the documented API)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from nno.kernel.emails import Email
from nno.kernel.inputs import InputModel
from nno.kernel.tiers import METRICS

TierName = Literal["starter", "growth", "scale"]
Metric = Literal[METRICS]  # type: ignore[valid-type]
PlatformId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
TenantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MAX_EVENTS = 10_000


class _Body(InputModel):
    model_config = ConfigDict(extra="forbid")


class ChangeTier(_Body):
    tier: TierName
    platformId: PlatformId | None = None


class CancelBody(_Body):
    platformId: PlatformId | None = None


class StartBody(_Body):
    """Onboarding (a service): the customer and subscription of a new platform."""

    platformId: PlatformId
    tier: TierName = "starter"
    email: Email | None = None


class UsageEventIn(_Body):
    id: EventId
    platformId: PlatformId
    tenantId: TenantId | None = None
    metric: Metric
    quantity: Annotated[int, Field(ge=0, le=10**15)]
    timestamp: Annotated[int, Field(ge=0, le=10**14)] | None = None


class UsageBatch(_Body):
    events: Annotated[list[UsageEventIn], Field(max_length=MAX_EVENTS)]


class PaymentMethodBody(_Body):
    platformId: PlatformId
    fails: bool


class AdvanceClock(_Body):
    seconds: Annotated[int, Field(ge=1, le=5 * 366 * 86_400)]
