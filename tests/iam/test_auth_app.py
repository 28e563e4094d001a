"""The per-platform auth app factory: its own database, its own users, no trust in X-Nno-* headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from nno.iam.auth_app import AUTH_MIGRATIONS_DIR, create_auth_app
from nno.kernel.config import Settings
from nno.kernel.db import Database, sqlite_url
from nno.kernel.migrations import upgrade
from tests.iam.conftest import IAM, PASSWORD, assert_error, sign_up


@pytest.fixture
async def platform_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(sqlite_url(tmp_path / "k3m9p2xw7q-default-auth-db.sqlite"))
    await upgrade(db, AUTH_MIGRATIONS_DIR)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def auth_app(platform_db: Database, settings: Settings) -> FastAPI:
    return create_auth_app(platform_db, settings, platform_id="k3m9p2xw7q")


@pytest.fixture
async def auth_client(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app),
                                 base_url="http://auth.k3m9p2xw7q.nno.localhost:8787") as c:
        yield c


async def test_platform_users_are_separate_from_nno(auth_client: httpx.AsyncClient,
                                                    client: httpx.AsyncClient) -> None:
    up = await auth_client.post("/api/auth/sign-up/email",
                                json={"email": "end@user.com", "password": PASSWORD, "name": "End User"})
    assert up.status_code == 200, up.text
    token = up.json()["token"]
    me = await auth_client.get("/api/nno/session", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["platformId"] == "k3m9p2xw7q" and me.json()["role"] == "user"
    # The NNO IAM does not know this user or token.
    assert (await client.post(f"{IAM}/api/auth/sign-in/email",
                              json={"email": "end@user.com", "password": PASSWORD})).status_code == 401
    assert (await client.get(f"{IAM}/api/nno/session", headers={"Authorization": f"Bearer {token}"})
            ).status_code == 401
    # Organizations (tenants) work the same way.
    org = await auth_client.post("/api/auth/organization/create", headers={"Authorization": f"Bearer {token}"},
                                 json={"name": "Tenant A", "slug": "tenant-a"})
    assert org.status_code == 201
    # NNO-only routes are not part of a platform's auth app.
    assert (await auth_client.post("/api/nno/bootstrap", json={})).status_code == 404


async def test_auth_app_ignores_identity_headers(auth_client: httpx.AsyncClient) -> None:
    victim = await sign_up(auth_client, "v@user.com", prefix="")
    assert victim.id
    forged = {"X-Nno-Auth-Type": "service", "X-Nno-Role": "service"}
    assert_error(await auth_client.post("/api/auth/organization/create", headers=forged,
                                        json={"name": "X", "slug": "x"}), 401)
    forged_user = {"X-Nno-Auth-Type": "session", "X-Nno-User-Id": victim.id}
    assert_error(await auth_client.get("/api/auth/profile", headers=forged_user), 401)


async def test_magic_link_points_at_the_platform_auth_host(auth_client: httpx.AsyncClient,
                                                           platform_db: Database) -> None:
    from sqlalchemy import text

    await auth_client.post("/api/auth/sign-in/magic-link", json={"email": "ml@user.com"})
    async with platform_db.session() as s:
        body = (await s.execute(text("SELECT body FROM mail_outbox"))).scalar_one()
    assert "http://auth.k3m9p2xw7q.nno.localhost:8787/api/auth/magic-link/verify?token=" in body
