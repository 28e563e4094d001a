"""cors: allowed headers exactly Content-Type, Authorization, X-Request-Id; origins from config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.gateway.conftest import SERVICE, Harness

ORIGIN = "https://console.example"


@pytest.fixture
async def cors_gw(make_gateway: Callable[..., Awaitable[Harness]]) -> Harness:
    return await make_gateway(cors_origins=f"{ORIGIN}, https://other.example")


def _preflight(origin: str, method: str = "POST", headers: str | None = "content-type, authorization") -> dict:
    out = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        out["Access-Control-Request-Headers"] = headers
    return out


async def test_preflight_allowed_without_auth(cors_gw: Harness) -> None:
    resp = await cors_gw.client.options("/api/v1/platforms", headers=_preflight(ORIGIN))
    assert resp.status_code == 204
    h = resp.headers
    assert h["access-control-allow-origin"] == ORIGIN
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-allow-headers"] == "Content-Type, Authorization, X-Request-Id"
    assert "POST" in h["access-control-allow-methods"] and h["vary"] == "Origin"
    assert int(h["access-control-max-age"]) > 0
    assert cors_gw.iam.session_calls == 0


@pytest.mark.parametrize("asked", ["x-api-key", "content-type, x-custom", "X-Nno-Role"])
async def test_preflight_with_other_headers_is_refused(cors_gw: Harness, asked: str) -> None:
    resp = await cors_gw.client.options("/api/v1/platforms", headers=_preflight(ORIGIN, headers=asked))
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "FORBIDDEN"
    assert "access-control-allow-origin" not in resp.headers


async def test_preflight_exactly_the_three_headers_any_case(cors_gw: Harness) -> None:
    resp = await cors_gw.client.options("/api/v1/platforms",
                                        headers=_preflight(ORIGIN, headers="X-REQUEST-ID,Content-Type,authorization"))
    assert resp.status_code == 204


async def test_preflight_from_unlisted_origin_is_refused(cors_gw: Harness) -> None:
    resp = await cors_gw.client.options("/api/v1/platforms", headers=_preflight("https://evil.example"))
    assert resp.status_code == 403
    assert "access-control-allow-origin" not in resp.headers


async def test_simple_request_from_listed_origin_gets_cors_headers(cors_gw: Harness) -> None:
    resp = await cors_gw.client.get("/api/v1/provisioning/x", headers={**SERVICE, "Origin": "https://other.example"})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "https://other.example"
    assert "X-Request-Id" in resp.headers["access-control-expose-headers"]


async def test_request_from_unlisted_origin_has_no_cors_headers(cors_gw: Harness) -> None:
    resp = await cors_gw.client.get("/health", headers={"Origin": "https://evil.example"})
    assert resp.status_code == 200 and "access-control-allow-origin" not in resp.headers


async def test_no_origins_configured_means_no_cross_origin_access(gw: Harness) -> None:
    resp = await gw.client.options("/api/v1/platforms", headers=_preflight(ORIGIN))
    assert resp.status_code == 403


async def test_wildcard_is_never_combined_with_credentials(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(cors_origins="*")
    resp = await gw.client.options("/api/v1/platforms", headers=_preflight("https://any.example"))
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in resp.headers
    simple = await gw.client.get("/health", headers={"Origin": "https://any.example"})
    assert simple.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in simple.headers


async def test_options_without_preflight_headers_is_routed_normally(cors_gw: Harness) -> None:
    resp = await cors_gw.client.options("/api/v1/provisioning/x", headers={**SERVICE, "Origin": ORIGIN})
    assert resp.status_code == 200 and resp.json()["method"] == "OPTIONS"
