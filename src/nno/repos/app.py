"""The CLI Service app (billing-cli-shell.md §3): platform repositories and console builds."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from nno.kernel.service import ServiceContext, create_service_app
from nno.repos.runner import BuildRunner
from nno.repos.views import router

MIGRATIONS_DIR: Path | None = Path(__file__).parent / "migrations"
RUNNER_KEY = "repos.runner"


def create_app(ctx: ServiceContext) -> FastAPI:
    app = create_service_app(
        "cli", title="NNO CLI Service",
        description="One configuration repository per platform; every change is one commit, and every "
        "commit builds and publishes the platform's console.",
    )
    app.state.ctx = ctx
    app.include_router(router)
    if ctx.settings.embedded_worker:
        runner = BuildRunner(ctx)
        ctx.extras[RUNNER_KEY] = runner
        ctx.startup_hooks.append(runner.start)
        ctx.shutdown_hooks.append(runner.stop)

    async def _close() -> None:
        provider = ctx.extras.get("repos.provider")
        if provider is not None:
            await provider.close()

    ctx.shutdown_hooks.insert(0, _close)
    return app
