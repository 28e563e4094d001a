"""The Stack Registry service app (provisioning-stacks.md §7): the catalogue of stack templates."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from nno.kernel.service import ServiceContext, create_service_app
from nno.stacks.service import StackRegistry
from nno.stacks.views import router

MIGRATIONS_DIR: Path | None = Path(__file__).parent / "migrations"


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        "stacks",
        title="NNO Stack Registry",
        description="Versioned stack template definitions: the catalogue platform admins browse and "
        "Provisioning activates.",
    )
    registry = StackRegistry(ctx)
    app.state.registry = registry
    app.include_router(router)
    ctx.startup_hooks.append(registry.seed)
    return app
