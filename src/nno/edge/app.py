"""The edge component: the local cloud's router and worker host, joined to the core like a service
(`create_app(ctx)`, `MIGRATIONS_DIR`); the core sends it every request whose Host is under
`NNO_BASE_DOMAIN`. Its database (`ctx.db`) is the local cloud's state, shared with the `local`
provider (see nno.edge.cloud)."""

from __future__ import annotations

from starlette.types import ASGIApp

from nno.edge.cloud import MIGRATIONS_DIR as _STATE_MIGRATIONS
from nno.edge.cloud import LocalCloud, migrate_state, state_database
from nno.edge.router import EdgeRouter
from nno.edge.workers import WorkerHost
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.service import ServiceContext

MIGRATIONS_DIR = _STATE_MIGRATIONS


def create_database(settings: Settings) -> Database:
    """The edge's own database is the local cloud's state: `{data_dir}/cloud/cloud.db` or schema `edge`."""
    return state_database(settings)


def create_app(ctx: ServiceContext) -> ASGIApp:
    cloud = LocalCloud(ctx.settings, db=ctx.db)
    host = WorkerHost(cloud, ctx.settings)
    router = EdgeRouter(cloud, host, ctx.bindings, ctx.settings.base_domain)
    unsubscribe = cloud.subscribe(host.invalidate)
    ctx.extras["cloud"] = cloud
    ctx.extras["worker_host"] = host

    async def startup() -> None:
        await migrate_state(ctx.db)

    async def shutdown() -> None:
        unsubscribe()
        await host.close()

    ctx.startup_hooks.append(startup)
    ctx.shutdown_hooks.append(shutdown)
    return router
