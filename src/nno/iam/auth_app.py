"""The account/session/organization surface as an app factory bound to any database.

The global IAM (`nno.iam.app`) is this plus the NNO-only routes. Provisioning's `local` provider
hosts one per platform as the `{platformId}-default-auth` worker, with its own users, on its own
database migrated with `AUTH_MIGRATIONS_DIR` (the IAM migrations: its tables are the same).
A per-platform auth app is reached directly, not through the gateway, so it ignores `X-Nno-*`
headers and believes only the session tokens it issued (and, for its `/api/nno/users/{id}/role` and
`/api/nno/admin-invites` routes, NNO service tokens minted for its platform: `platform_roles`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI

from nno.iam.better_auth import BetterAuthSurface
from nno.iam.context import IAMContext
from nno.iam.mailer import Mailer
from nno.iam.views import auth, feature_permissions, orgs, platform_admin, session, tenant_orgs
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.service import create_service_app

AUTH_MIGRATIONS_DIR: Path = Path(__file__).parent / "migrations"

SHARED_ROUTERS = (auth.router, session.router, orgs.router, orgs.directory_router)


def platform_auth_url(settings: Settings, platform_id: str) -> str:
    """Where the edge router serves a platform's auth worker: `auth.{platformId}.{base_domain}`."""
    public = urlsplit(settings.public_url)
    port = f":{public.port}" if public.port else ""
    return f"{public.scheme or 'http'}://auth.{platform_id}.{settings.base_domain}{port}"


def build_app(ctx: IAMContext, *, title: str, name: str) -> FastAPI:
    app = create_service_app(name, title=title,
                             description="Accounts, sessions and organizations (Better Auth-compatible paths)")
    app.state.iam = ctx
    app.add_middleware(BetterAuthSurface)
    for router in SHARED_ROUTERS:
        app.include_router(router)
    return app


def create_auth_app(db: Database, settings: Settings, *, platform_id: str | None,
                    public_url: str | None = None, cookie_domain: str | None = None) -> FastAPI:
    """A per-platform auth service on `db` (already migrated with AUTH_MIGRATIONS_DIR). With
    `cookie_domain` (`.{platformId}.{base}`), its session cookie is shared by the platform's apps."""
    base = public_url or (platform_auth_url(settings, platform_id) if platform_id else settings.public_url)
    ctx = IAMContext(db=db, settings=settings, mailer=Mailer.from_settings(db, settings),
                     platform_id=platform_id, trust_gateway_headers=False, public_base=base.rstrip("/"),
                     cookie_domain=cookie_domain)
    label = f"{platform_id}-default-auth" if platform_id else "auth"
    app = build_app(ctx, title=f"NNO auth ({label})", name=label)
    if platform_id:
        # Platform-level roles: NNO (service token for this platform) or the platform's own admins.
        app.include_router(platform_admin.router)
        app.include_router(feature_permissions.router)  # what its active features declare
        app.include_router(tenant_orgs.router)  # the Registry's tenants as organizations
    return app
