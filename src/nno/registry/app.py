"""The Registry service app: platforms, tenants, stacks, resources, features, lifecycle, onboarding."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from nno.kernel.service import ServiceContext, create_service_app
from nno.registry.store import StatusRepublisher
from nno.registry.tenant_orgs import TenantOrgDispatcher
from nno.registry.views import install_routes

MIGRATIONS_DIR: Path | None = Path(__file__).parent / "migrations"


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        "registry",
        title="NNO Registry",
        description="Platform catalog, tenants, stacks, resources, DNS records, feature management, "
        "lifecycle and onboarding",
    )
    install_routes(app, ctx)
    republisher = StatusRepublisher.of(ctx)
    ctx.startup_hooks.append(republisher.start)
    ctx.shutdown_hooks.append(republisher.stop)
    tenant_orgs = TenantOrgDispatcher.of(ctx)
    ctx.startup_hooks.append(tenant_orgs.start)
    ctx.shutdown_hooks.append(tenant_orgs.stop)
    return app
