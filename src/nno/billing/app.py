"""The Billing service app: routes, the provider (`local` ledger or `stripe`) and the scheduler."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, Response

from nno.billing.config import BillingSettings
from nno.billing.provider import LocalProvider, Provider, ProviderError
from nno.billing.scheduler import Scheduler
from nno.billing.service import BillingService
from nno.billing.views import SCHEDULER_KEY, SERVICE_KEY, router
from nno.kernel.errors import error_response
from nno.kernel.service import ServiceContext, create_service_app

MIGRATIONS_DIR: Path | None = Path(__file__).parent / "migrations"


def make_provider(settings: BillingSettings) -> Provider:
    if settings.provider == "stripe":
        from nno.billing.stripe_provider import StripeProvider

        return StripeProvider(settings)
    return LocalProvider()


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        "billing",
        title="NNO Billing",
        description="Subscriptions on the documented tiers, usage metering, invoices, quotas and dunning.",
    )
    app.state.ctx = ctx
    settings = BillingSettings()
    provider = make_provider(settings)
    service = BillingService(ctx, settings, provider)
    scheduler = Scheduler(service)
    ctx.extras[SERVICE_KEY] = service
    ctx.extras[SCHEDULER_KEY] = scheduler
    app.include_router(router)

    @app.exception_handler(ProviderError)
    async def _provider_error(request: Request, exc: ProviderError) -> Response:
        return error_response(502, "PAYMENT_PROVIDER_ERROR", str(exc))
    if settings.scheduler:
        ctx.startup_hooks.append(scheduler.start)
        ctx.shutdown_hooks.append(scheduler.stop)
    ctx.shutdown_hooks.insert(0, provider.close)
    return app
