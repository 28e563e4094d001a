"""The global NNO IAM service: the shared auth surface plus the NNO-only routes (platform
membership, API keys, roles and grants, service tokens, bootstrap, audit)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from nno.iam.auth_app import AUTH_MIGRATIONS_DIR, build_app
from nno.iam.context import PLATFORM_OWNER, PLATFORM_STATUS, IAMContext
from nno.iam.mailer import Mailer
from nno.iam.maintenance import Purger
from nno.iam.registry_client import read_owner
from nno.iam.views import admin, apikeys, operators, orgs, platform, platform_invitations, rbac, users
from nno.iam.views import audit as audit_views
from nno.kernel.platform_status import read_status
from nno.kernel.service import ServiceContext

MIGRATIONS_DIR: Path | None = AUTH_MIGRATIONS_DIR

NNO_ROUTERS = (platform.router, users.router, apikeys.router, orgs.nno_router, rbac.router, admin.router,
               audit_views.router, operators.router, platform_invitations.router)


def create_app(ctx: ServiceContext) -> FastAPI:
    s = ctx.settings
    iam = IAMContext(db=ctx.db, settings=s, mailer=Mailer.from_settings(ctx.db, s), platform_id=None,
                     trust_gateway_headers=True, public_base=s.public_url.rstrip("/") + "/api/v1/iam")
    iam.extras[PLATFORM_STATUS] = lambda platform_id: read_status(ctx.kv, ctx.bindings, platform_id)
    iam.extras[PLATFORM_OWNER] = lambda platform_id: read_owner(ctx.bindings, platform_id)
    app = build_app(iam, title="NNO IAM", name="iam")
    for router in NNO_ROUTERS:
        app.include_router(router)
    ctx.startup_hooks.append(iam.mailer.announce)
    purger = Purger(ctx.db)
    ctx.startup_hooks.append(purger.start)
    ctx.shutdown_hooks.append(purger.stop)
    ctx.extras["iam"] = iam
    return app
