"""Billing routes, mounted at the gateway's /api/v1/billing (DECISIONS 15: at the service root)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from nno.billing.access import BillingAccess
from nno.billing.scheduler import Scheduler
from nno.billing.schemas import (
    USAGE_BATCH,
    AdvanceClock,
    CancelBody,
    ChangeTier,
    PaymentMethodBody,
    StartBody,
    TierName,
    usage_batch_schema,
)
from nno.billing.service import BillingService
from nno.billing.webhooks import handle_stripe_webhook
from nno.kernel.errors import NNOError
from nno.kernel.identity import get_identity

router = APIRouter()

SERVICE_KEY = "billing.service"
SCHEDULER_KEY = "billing.scheduler"


def _service(request: Request) -> BillingService:
    svc: BillingService = request.app.state.ctx.extras[SERVICE_KEY]
    return svc


def _access(request: Request) -> BillingAccess:
    return BillingAccess(request.app.state.ctx, get_identity(request))


Svc = Annotated[BillingService, Depends(_service)]
Acc = Annotated[BillingAccess, Depends(_access)]
PlatformQuery = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


async def _grant(acc: BillingAccess, platform_id: str | None, *, change: bool) -> str:
    pid = acc.platform_id(platform_id)
    await acc.grant(pid, change=change)
    return pid


@router.get("/plans", summary="The tiers: prices, limits, included usage and overage prices")
async def plans(svc: Svc, acc: Acc) -> dict[str, Any]:
    acc.require_authenticated()
    return {"data": svc.plans()}


@router.get("/subscription", summary="Get the active subscription of a platform")
async def get_subscription(svc: Svc, acc: Acc, platformId: PlatformQuery = None) -> dict[str, Any] | None:
    pid = await _grant(acc, platformId, change=False)
    return await svc.subscription(pid)


@router.post("/subscription", summary="Reserved for future use", status_code=501)
async def create_subscription(acc: Acc) -> None:
    acc.require_authenticated()
    raise NNOError(501, "NOT_IMPLEMENTED", "Reserved: subscriptions start at onboarding; change tier with "
                   "POST /subscription/change-tier")


@router.post("/subscription/cancel", summary="Cancel the subscription at period end")
async def cancel(svc: Svc, acc: Acc, body: CancelBody | None = None,
                 platformId: PlatformQuery = None) -> dict[str, Any]:
    pid = await _grant(acc, platformId or (body.platformId if body else None), change=True)
    return await svc.cancel(pid, acc.actor)


@router.post("/subscription/change-tier", summary="Upgrade or downgrade the tier (prorated)")
async def change_tier(svc: Svc, acc: Acc, body: ChangeTier, platformId: PlatformQuery = None) -> dict[str, Any]:
    pid = await _grant(acc, platformId or body.platformId, change=True)
    return await svc.change_tier(pid, body.tier, acc.actor, proration_date=body.prorationDate)


@router.get("/subscription/proration-preview", summary="Preview the proration of a tier change")
async def proration_preview(svc: Svc, acc: Acc, tier: TierName, platformId: PlatformQuery = None) -> dict[str, Any]:
    pid = await _grant(acc, platformId, change=False)
    return await svc.preview(pid, tier)


@router.get("/usage", summary="This period's usage against the tier's included amounts")
async def usage(svc: Svc, acc: Acc, platformId: PlatformQuery = None, byTenant: bool = False) -> dict[str, Any]:
    pid = await _grant(acc, platformId, change=False)
    return await svc.usage(pid, by_tenant=byTenant)


@router.get("/usage/history", summary="Daily snapshots and monthly roll-ups")
async def usage_history(svc: Svc, acc: Acc, platformId: PlatformQuery = None) -> dict[str, Any]:
    pid = await _grant(acc, platformId, change=False)
    return await svc.history(pid)


@router.post("/usage/events", summary="Ingest usage events (services; idempotent by event id)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": usage_batch_schema()}}}})
async def ingest(request: Request, svc: Svc, acc: Acc) -> dict[str, int]:
    acc.require_service("report usage")
    # The hot path of metering: the raw body is parsed and validated in one pass (see USAGE_BATCH).
    try:
        batch = USAGE_BATCH.validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    return await svc.ingest(batch["events"])


@router.get("/invoices", summary="A platform's invoices, newest first")
async def invoices(svc: Svc, acc: Acc, platformId: PlatformQuery = None,
                   limit: Annotated[int | None, Query(ge=1, le=100)] = None,
                   cursor: Annotated[str | None, Query(max_length=500)] = None) -> dict[str, Any]:
    pid = await _grant(acc, platformId, change=False)
    return await svc.invoices(pid, limit, cursor)


@router.post("/invoices/{invoice_id}/pay", summary="Pay an open invoice now (local provider)")
async def pay_invoice(svc: Svc, acc: Acc, invoice_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_]{1,64}$")],
                      platformId: PlatformQuery = None) -> dict[str, Any]:
    pid = await _grant(acc, platformId, change=True)
    return await svc.pay(pid, invoice_id, acc.actor)


@router.get("/audit", summary="Billing's audit trail for a platform")
async def audit(svc: Svc, acc: Acc, platformId: PlatformQuery = None,
                limit: Annotated[int | None, Query(ge=1, le=100)] = None) -> dict[str, Any]:
    pid = await _grant(acc, platformId, change=False)
    return {"data": await svc.audit_log(pid, limit)}


@router.post("/customers", status_code=201, summary="Onboarding: customer and subscription (services)")
async def start(svc: Svc, acc: Acc, body: StartBody) -> dict[str, Any]:
    acc.require_service("start subscriptions")
    return await svc.start(body.platformId, body.tier, body.email, acc.actor)


@router.put("/payment-method", summary="The local provider's payment method: a failing card (operators) "
            "or a working one (also the platform's admins)")
async def payment_method(svc: Svc, acc: Acc, body: PaymentMethodBody) -> dict[str, Any]:
    if body.fails:
        acc.require_privileged("make a payment method fail")
    else:
        await acc.grant(body.platformId, change=True)
    return await svc.set_payment_method(body.platformId, body.fails, acc.actor)


@router.post("/test-clock/advance", summary="Advance the local provider's clock, then run due work (operators)")
async def advance_clock(request: Request, svc: Svc, acc: Acc, body: AdvanceClock) -> dict[str, Any]:
    acc.require_privileged("advance the billing clock")
    clock = await svc.advance_clock(body.seconds * 1000, acc.actor)
    ran = await _scheduler(request).tick()
    return {**clock, "ran": ran}


@router.post("/scheduler/run", summary="Run the scheduler's due work now (operators)")
async def run_scheduler(request: Request, acc: Acc) -> dict[str, Any]:
    acc.require_privileged("run the billing scheduler")
    return {"ran": await _scheduler(request).tick()}


@router.post("/webhooks/stripe", summary="Stripe webhook (signature-verified; public at the gateway)")
async def stripe_webhook(request: Request, svc: Svc) -> JSONResponse:
    payload = await request.body()
    result = await handle_stripe_webhook(svc, payload, request.headers.get("stripe-signature"))
    return JSONResponse(result)


def _scheduler(request: Request) -> Scheduler:
    sched: Scheduler = request.app.state.ctx.extras[SCHEDULER_KEY]
    return sched
