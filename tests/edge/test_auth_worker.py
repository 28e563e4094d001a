"""A platform's own auth Worker: a real IAM auth app on that platform's D1, reached by Host.
Its users are that platform's users, not NNO's and not another platform's."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import httpx
import pytest

from nno.provisioning.providers.local import LocalProvider
from tests.d1sql import d1_rows, d1_tables
from tests.edge.conftest import P1, P2

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nno.iam.auth_app") is None,
                                reason="IAM's auth_app is not written yet")

At = Callable[[str], httpx.AsyncClient]
USER = {"name": "Ada", "email": "ada@example.com", "password": "correct horse battery staple"}


async def deploy_auth(provider: LocalProvider, pid: str) -> None:
    """The PROVISION_PLATFORM steps that concern the cloud, as the job engine runs them."""
    await provider.ensure_d1(f"{pid}-default-auth-db")
    await provider.ensure_worker(f"{pid}-default-auth", kind="auth", platform_id=pid,
                                 bindings={"DB": f"{pid}-default-auth-db"})
    await provider.put_secret(f"{pid}-default-auth", "AUTH_SECRET", f"auth-secret-{pid}")
    await provider.ensure_dns(f"auth.svc.default.{pid}.nno.localhost", target=f"{pid}-default-auth",
                              platform_id=pid)


async def test_end_user_signs_up_on_their_platforms_auth_worker(
    provider: LocalProvider, at: At, client: httpx.AsyncClient
) -> None:
    await deploy_auth(provider, P1)
    await deploy_auth(provider, P2)
    auth1 = at(f"auth.svc.default.{P1}.nno.localhost")
    signed_up = await auth1.post("/api/auth/sign-up/email", json=USER)
    assert signed_up.status_code in (200, 201), signed_up.text
    assert signed_up.json()["user"]["email"] == USER["email"]

    signed_in = await auth1.post("/api/auth/sign-in/email", json={"email": USER["email"],
                                                                   "password": USER["password"]})
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["token"]
    session = await at(f"auth.{P1}.nno.localhost").get("/api/nno/session",
                                                        headers={"Authorization": f"Bearer {token}"})
    assert session.status_code == 200 and session.json()["email"] == USER["email"]

    # The user lives in P1's D1 only.
    d1 = f"{P1}-default-auth-db"
    user_tables = [t for t in await d1_tables(provider.cloud, d1) if t in ("users", "user")]
    assert user_tables and (await d1_rows(provider.cloud, d1, f"select count(*) from {user_tables[0]}"))[0][0] == 1
    other = await at(f"auth.svc.default.{P2}.nno.localhost").post(
        "/api/auth/sign-in/email", json={"email": USER["email"], "password": USER["password"]})
    assert other.status_code == 401
    nno = await client.post("/api/v1/iam/api/auth/sign-in/email",
                            json={"email": USER["email"], "password": USER["password"]})
    assert nno.status_code == 401
    # A session of P1 means nothing to P2's auth Worker.
    assert (await at(f"auth.{P2}.nno.localhost").get(
        "/api/nno/session", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_forged_identity_headers_do_not_open_the_auth_worker(provider: LocalProvider, at: At) -> None:
    await deploy_auth(provider, P1)
    forged = {"X-Nno-Auth-Type": "service", "X-Nno-Role": "service", "X-Nno-User-Id": "u1"}
    resp = await at(f"auth.svc.default.{P1}.nno.localhost").get("/api/nno/session", headers=forged)
    assert resp.status_code == 401


async def test_deprovisioning_the_auth_worker_disposes_it(provider: LocalProvider, at: At) -> None:
    await deploy_auth(provider, P1)
    auth1 = at(f"auth.svc.default.{P1}.nno.localhost")
    assert (await auth1.post("/api/auth/sign-up/email", json=USER)).status_code in (200, 201)
    for ref in await provider.list_platform_resources(P1):
        if ref.type in ("dns", "worker"):
            await getattr(provider, f"delete_{ref.type}")(ref.name)
    await provider.delete_d1(f"{P1}-default-auth-db")
    assert (await auth1.get("/api/nno/session")).status_code == 404
    assert await provider.list_platform_resources(P1) == []
    # Re-provisioning starts from an empty D1.
    await deploy_auth(provider, P1)
    again = await auth1.post("/api/auth/sign-in/email", json={"email": USER["email"], "password": USER["password"]})
    assert again.status_code == 401
