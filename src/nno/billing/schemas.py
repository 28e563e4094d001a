"""Billing request bodies (camelCase, as the documented API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, Strict, StringConstraints, TypeAdapter
from typing_extensions import TypedDict

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
    # A preview's `prorationDate`: the change is then charged exactly as previewed.
    prorationDate: Annotated[int, Field(ge=0, le=10**14)] | None = None


class CancelBody(_Body):
    platformId: PlatformId | None = None


class StartBody(_Body):
    """Onboarding (a service): the customer and subscription of a new platform."""

    platformId: PlatformId
    tier: TierName = "starter"
    email: Email | None = None


class UsageEventIn(TypedDict):
    """One usage event. `tenantId` is the Registry tenant; a reporter that knows only the stack
    (the local cloud: a Worker's name carries its stack) sends `stackId` and Billing maps it."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    id: EventId
    platformId: PlatformId
    tenantId: NotRequired[TenantId | None]
    stackId: NotRequired[TenantId | None]
    metric: Metric
    # Strict: a JSON integer only (no `true`, no "5"); the bounds keep every value inside BIGINT.
    quantity: Annotated[int, Strict(), Field(ge=0, le=10**15)]
    timestamp: NotRequired[Annotated[int, Strict(), Field(ge=0, le=10**14)] | None]


class UsageBatch(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    events: Annotated[list[UsageEventIn], Field(max_length=MAX_EVENTS)]


# The ingest route validates the raw body in one pass of pydantic-core (JSON parsing included)
# into plain dicts: no model instance per event and no Python validator per field. Every
# constraint is a pattern, a literal or a bound, so the InputModel checks (NUL characters,
# int64, booleans) hold by construction.
USAGE_BATCH: TypeAdapter[UsageBatch] = TypeAdapter(UsageBatch)


def usage_batch_schema() -> dict[str, Any]:
    """The batch's JSON schema with the event schema inlined (for the route's OpenAPI entry)."""
    schema = USAGE_BATCH.json_schema()
    defs = schema.pop("$defs", {})
    items = schema["properties"]["events"]["items"]
    ref = items.get("$ref", "")
    if ref.startswith("#/$defs/"):
        schema["properties"]["events"]["items"] = defs[ref.rsplit("/", 1)[1]]
    return schema


class PaymentMethodBody(_Body):
    platformId: PlatformId
    fails: bool


class AdvanceClock(_Body):
    seconds: Annotated[int, Field(ge=1, le=5 * 366 * 86_400)]
