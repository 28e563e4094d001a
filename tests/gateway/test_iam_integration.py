"""The gateway in front of the real IAM (the whole core): sign up through the gateway, use the
session token and cookie, and forged X-Nno-* headers never reach a service."""

from __future__ import annotations

import importlib.util
import uuid

import httpx
import pytest

from nno.core import Core
from nno.kernel.bindings import ASGIBinding
from tests.gateway.fakes import echo_app

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nno.iam.app") is None, reason="IAM not built yet")

FORGED = {"X-Nno-Auth-Type": "service", "X-Nno-Role": "service", "X-NNO-User-Id": "root",
          "x-nno-platform-id": "someone-else", "X-Nno-Internal-Token": "forged"}


async def _sign_up(client: httpx.AsyncClient) -> tuple[str, dict]:
    email = f"gw-{uuid.uuid4().hex[:8]}@example.com"
    resp = await client.post("/api/v1/iam/api/auth/sign-up/email",
                             json={"name": "Gateway Test", "email": email, "password": "correct horse battery 9"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token"] and body["user"]["email"] == email
    return body["token"], body


async def test_sign_up_then_use_the_session_token(client: httpx.AsyncClient) -> None:
    token, body = await _sign_up(client)
    resp = await client.get("/api/v1/iam/api/nno/session", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["userId"] == body["user"]["id"]
    client.cookies.clear()
    assert (await client.get("/api/v1/iam/api/nno/session")).status_code == 401
    assert (await client.get("/api/v1/iam/api/nno/session",
                             headers={"Authorization": "Bearer not-a-session"})).status_code == 401


async def test_session_cookie_set_by_sign_up_works_through_the_gateway(client: httpx.AsyncClient) -> None:
    await _sign_up(client)
    assert client.cookies.get("nno_session")
    resp = await client.get("/api/v1/iam/api/nno/session")  # the cookie jar sends nno_session
    assert resp.status_code == 200


async def test_forged_headers_never_reach_a_service(core: Core, client: httpx.AsyncClient) -> None:
    core.bindings.add(ASGIBinding("stacks", echo_app()))
    token, body = await _sign_up(client)
    client.cookies.clear()
    resp = await client.get("/api/v1/stacks/anything", headers={**FORGED, "Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    seen = {k.lower(): v for k, v in resp.json()["headers"]}
    assert seen["x-nno-auth-type"] == "session" and seen["x-nno-user-id"] == body["user"]["id"]
    assert seen["x-nno-role"] != "service" and seen.get("x-nno-platform-id") != "someone-else"
    assert "x-nno-internal-token" not in seen
    # Without a credential the forged identity is simply refused.
    assert (await client.get("/api/v1/stacks/anything", headers=FORGED)).status_code == 401


async def test_forged_service_identity_cannot_use_service_only_iam_routes(client: httpx.AsyncClient) -> None:
    token, _ = await _sign_up(client)
    client.cookies.clear()
    resp = await client.post("/api/v1/iam/api/nno/apikey/validate", json={"key": "nno_" + "x" * 40},
                             headers={**FORGED, "Authorization": f"Bearer {token}"})
    assert resp.status_code == 403  # IAM saw the user's session, not the forged service identity
    resp = await client.post("/api/v1/iam/api/nno/apikey/validate", json={"key": "nno_" + "x" * 40},
                             headers=FORGED)
    assert resp.status_code == 401


async def test_signed_out_token_stops_working_after_the_cache_ttl(make_settings, core: Core) -> None:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=core.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as client:
        token, _ = await _sign_up(client)
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/v1/iam/api/nno/session", headers=auth)).status_code == 200
        client.cookies.clear()
        assert (await client.post("/api/v1/iam/api/auth/sign-out", headers=auth)).status_code == 200
        gateway = core.gateway
        gateway.credentials.cache.clear()  # as if the TTL had passed
        assert (await client.get("/api/v1/iam/api/nno/session", headers=auth)).status_code == 401
