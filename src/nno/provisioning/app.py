"""The Provisioning service app (docs/contracts.md §1, §5)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from nno.kernel.service import ServiceContext, create_service_app
from nno.provisioning.provider_factory import close_provider
from nno.provisioning.views import router
from nno.provisioning.worker import JobWorker

MIGRATIONS_DIR: Path | None = Path(__file__).parent / "migrations"
WORKER_KEY = "provisioning.worker"


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        "provisioning",
        title="NNO Provisioning",
        description="Cloud resource provisioning: the job state machine behind platform bootstrap, "
        "feature and stack activation, and deprovisioning.",
    )
    app.state.ctx = ctx
    app.include_router(router)

    if ctx.settings.embedded_worker:
        worker = JobWorker(ctx)
        ctx.extras[WORKER_KEY] = worker
        ctx.startup_hooks.append(worker.start)
        ctx.shutdown_hooks.append(worker.stop)

    async def _close_provider() -> None:
        await close_provider(ctx)

    # Shutdown hooks run in reverse: the worker stops first, then the provider closes.
    ctx.shutdown_hooks.insert(0, _close_provider)
    return app
