"""No service answers a slash redirect (whose `Location` would be the service's internal path, e.g.
`/api/v1/platforms/ID/tenants/` -> `/ID/tenants`): a trailing slash reaches the route without it,
on every route of every service behind the gateway, and on a platform's own auth app."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from nno.core import Core
from nno.gateway.routing import ROUTES
from nno.kernel.config import Settings
from tests.iam.conftest import platform_auth_client, platform_auth_db

PUBLIC_PREFIX = {route.service: route.prefix for route in ROUTES if not route.upstream_prefix}


def _get_paths(app: FastAPI) -> list[str]:
    """Every GET route of a service, its path parameters filled with an id that exists nowhere."""
    paths = []
    for path, item in app.openapi()["paths"].items():
        if "get" in item and path != "/":
            paths.append(re.sub(r"\{[^}]+\}", "x1nowhere", path))
    return paths


async def test_every_get_route_of_every_service_ignores_a_trailing_slash(
    core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    checked = 0
    for name, wrapped in core.apps.items():
        app: Any = wrapped
        while not hasattr(app, "openapi"):  # inside the service layers
            app = app.app
        prefix = PUBLIC_PREFIX[name]
        for path in _get_paths(app):
            plain = await client.get(prefix + path, headers=service_headers)
            slashed = await client.get(prefix + path + "/", headers=service_headers)
            assert slashed.status_code not in (301, 302, 307, 308), (name, path, slashed.headers.get("location"))
            assert "location" not in slashed.headers
            assert slashed.status_code == plain.status_code, (name, path, slashed.text, plain.text)
            checked += 1
    assert set(core.apps) >= {"iam", "registry", "provisioning"} and checked > 30


async def test_the_issues_examples_are_no_redirects(client: httpx.AsyncClient,
                                                    service_headers: dict[str, str]) -> None:
    tenants = await client.get("/api/v1/platforms/x1nowhere/tenants/", headers=service_headers)
    assert tenants.status_code == 404 and tenants.json()["error"]["code"] == "NOT_FOUND"
    assert "location" not in tenants.headers
    # An authenticated IAM route: the same 401 as without the slash, not a 307 to `/api/nno/session`.
    session = await client.get("/api/v1/iam/api/nno/session/", headers={"Authorization": "Bearer nope"})
    assert session.status_code == 401 and "location" not in session.headers


async def test_a_platforms_auth_app_ignores_a_trailing_slash(settings: Settings, tmp_path: Path) -> None:
    pid = "k3m9p2xw7q"
    async with platform_auth_db(settings, tmp_path, pid) as db, platform_auth_client(db, settings, pid) as auth:
        up = await auth.post("/api/auth/sign-up/email/", json={"email": "end@user.example",
                                                               "password": "correct-horse-9", "name": "End"})
        assert up.status_code == 200, up.text
        token = up.json()["token"]
        me = await auth.get("/api/nno/session/", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["email"] == "end@user.example"
        anonymous = await auth.get("/api/auth/get-session/")
        assert anonymous.status_code == 200 and "location" not in anonymous.headers
