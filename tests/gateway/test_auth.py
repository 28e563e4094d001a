"""auth: the seed's three paths, their order, the allowlist, caches, header stripping, dev bypass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nno.gateway.routing import PUBLIC_ROUTES
from tests.gateway.conftest import (
    API_KEY,
    OPERATOR_TOKEN,
    SERVICE,
    SESSION_TOKEN,
    Harness,
    asgi_request,
    bearer,
    received_headers,
)

PROTECTED = "/api/v1/provisioning/provision/jobs"


async def test_no_credential_is_401_envelope(gw: Harness) -> None:
    resp = await gw.client.get(PROTECTED)
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["code"] == "UNAUTHORIZED" and err["requestId"] == resp.headers["x-request-id"]
    assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_path1_static_key_is_service(gw: Harness) -> None:
    resp = await gw.client.get(PROTECTED, headers=SERVICE)
    assert resp.status_code == 200
    seen = received_headers(resp)
    assert seen["x-nno-auth-type"] == "service" and seen["x-nno-role"] == "service"
    assert "x-nno-user-id" not in seen
    assert seen["authorization"] == SERVICE["Authorization"]  # forwarded as sent
    assert gw.iam.session_calls == 0  # never asks IAM


async def test_path1_near_miss_key_is_treated_as_session_and_refused(gw: Harness) -> None:
    resp = await gw.client.get(PROTECTED, headers=bearer(SERVICE["Authorization"][7:] + "x"))
    assert resp.status_code == 401
    assert gw.iam.session_calls == 1


async def test_path2_session_token(gw: Harness) -> None:
    resp = await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))
    assert resp.status_code == 200
    seen = received_headers(resp)
    assert seen["x-nno-auth-type"] == "session"
    assert seen["x-nno-user-id"] == "user1"
    assert seen["x-nno-role"] == "platform-admin"
    assert seen["x-nno-platform-id"] == "plat1"
    assert seen["x-nno-email"] == "ann@example.com"
    assert gw.iam.seen_headers[0]["authorization"] == f"Bearer {SESSION_TOKEN}"


async def test_path2_session_cookie(gw: Harness) -> None:
    resp = await gw.client.get(PROTECTED, headers={"Cookie": f"theme=dark; nno_session={SESSION_TOKEN}"})
    assert resp.status_code == 200
    assert received_headers(resp)["x-nno-user-id"] == "user1"
    assert "nno_session=" in gw.iam.seen_headers[0]["cookie"]


async def test_bearer_beats_cookie(gw: Harness) -> None:
    resp = await gw.client.get(PROTECTED, headers={**bearer(OPERATOR_TOKEN),
                                                   "Cookie": f"nno_session={SESSION_TOKEN}"})
    assert received_headers(resp)["x-nno-user-id"] == "op1"


async def test_operator_session_has_operator_role(gw: Harness) -> None:
    resp = await gw.client.get(PROTECTED, headers=bearer(OPERATOR_TOKEN))
    seen = received_headers(resp)
    assert seen["x-nno-role"] == "nno-operator" and "x-nno-platform-id" not in seen


async def test_path3_api_key(gw: Harness) -> None:
    resp = await gw.client.get(PROTECTED, headers={"x-api-key": API_KEY})
    assert resp.status_code == 200
    seen = received_headers(resp)
    # IAM named no maker role: the key acts as a plain user, never more.
    assert seen["x-nno-auth-type"] == "apikey" and seen["x-nno-role"] == "user"
    assert seen["x-nno-platform-id"] == "plat2" and seen["x-nno-key-id"] == "key1"
    assert seen["x-nno-user-id"] == "user2" and seen["x-nno-permissions"] == "platforms:read"
    assert gw.iam.key_calls == 1


@pytest.mark.parametrize(("iam_role", "forwarded"), [
    ("platform-admin", "platform-admin"), ("user", "user"),
    # A key never acts as an operator or a service, whatever IAM's answer says.
    ("nno-operator", "user"), ("service", "user"), ("apikey", "user")])
async def test_path3_key_acts_with_its_makers_role_at_most_platform_admin(
        gw: Harness, iam_role: str, forwarded: str) -> None:
    gw.iam.keys[API_KEY] = {**gw.iam.keys[API_KEY], "role": iam_role}
    seen = received_headers(await gw.client.get(PROTECTED, headers={"x-api-key": API_KEY}))
    assert seen["x-nno-auth-type"] == "apikey" and seen["x-nno-role"] == forwarded


@pytest.mark.parametrize("key", ["nno_unknown_" + "z" * 32, "sk_live_" + "k" * 40, ""])
async def test_path3_bad_key_is_401(gw: Harness, key: str) -> None:
    resp = await gw.client.get(PROTECTED, headers={"x-api-key": key})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "UNAUTHORIZED"


async def test_order_static_key_then_api_key_then_session(gw: Harness) -> None:
    both = {**SERVICE, "x-api-key": API_KEY}
    assert received_headers(await gw.client.get(PROTECTED, headers=both))["x-nno-auth-type"] == "service"
    key_and_session = {**bearer(SESSION_TOKEN), "x-api-key": API_KEY}
    assert received_headers(await gw.client.get(PROTECTED, headers=key_and_session))["x-nno-auth-type"] == "apikey"
    # The first credential present decides: a bad key is not rescued by a good session.
    bad_key = {**bearer(SESSION_TOKEN), "x-api-key": "nno_" + "x" * 40}
    assert (await gw.client.get(PROTECTED, headers=bad_key)).status_code == 401


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Token abc"])
async def test_unreadable_authorization_is_401(gw: Harness, value: str) -> None:
    assert (await gw.client.get(PROTECTED, headers={"Authorization": value})).status_code == 401


async def test_client_x_nno_headers_never_reach_a_service(gw: Harness) -> None:
    forged = [
        (b"host", b"gateway.test"),
        (b"authorization", f"Bearer {SESSION_TOKEN}".encode()),
        (b"X-Nno-Role", b"service"),
        (b"x-nno-auth-type", b"service"),
        (b"X-NNO-USER-ID", b"admin"),
        (b"x-Nno-Platform-Id", b"other"),
        (b"x-nno-internal-token", b"forged"),
        (b"X-Nno-Request-Id", b"forged-rid"),
        (b"x-nno-anything", b"1"),
    ]
    status, _, body = await asgi_request(gw.gateway, "GET", PROTECTED, headers=forged)
    assert status == 200
    import json

    seen = json.loads(body)["headers"]
    nno = {(k.lower(), v) for k, v in seen if k.lower().startswith("x-nno-")}
    assert ("x-nno-role", "platform-admin") in nno and ("x-nno-user-id", "user1") in nno
    assert not any(v in ("service", "admin", "other", "forged", "forged-rid", "1") for _, v in nno)
    assert not any(k == "x-nno-internal-token" or k == "x-nno-anything" for k, _ in nno)
    assert sum(1 for k, _ in nno if k == "x-nno-role") == 1


async def test_session_answers_are_cached_for_the_ttl(
    make_gateway: Callable[..., Awaitable[Harness]]
) -> None:
    clock = [1000.0]
    gw = await make_gateway(auth_cache_ttl_s=10)
    gw.gateway.credentials.cache.clock = lambda: clock[0]
    for _ in range(3):
        assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 200
    assert gw.iam.session_calls == 1
    # Revoked in IAM: still served from cache within the TTL, refused after it.
    del gw.iam.sessions[SESSION_TOKEN]
    clock[0] += 9
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 200
    clock[0] += 2
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 401
    assert gw.iam.session_calls == 2


async def test_refusals_are_cached_briefly(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    clock = [1000.0]
    gw = await make_gateway(auth_cache_ttl_s=10)
    gw.gateway.credentials.cache.clock = lambda: clock[0]
    for _ in range(3):
        assert (await gw.client.get(PROTECTED, headers=bearer("nope"))).status_code == 401
    assert gw.iam.session_calls == 1
    gw.iam.sessions["nope"] = {"userId": "late"}
    clock[0] += 2.5  # the negative TTL is capped at 2 s
    assert (await gw.client.get(PROTECTED, headers=bearer("nope"))).status_code == 200


async def test_api_key_answers_are_cached(gw: Harness) -> None:
    for _ in range(3):
        assert (await gw.client.get(PROTECTED, headers={"x-api-key": API_KEY})).status_code == 200
    assert gw.iam.key_calls == 1


async def test_cache_is_keyed_by_a_hash_and_bounded(gw: Harness) -> None:
    await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))
    keys = list(gw.gateway.credentials.cache._data)
    assert keys and all(isinstance(k, bytes) and SESSION_TOKEN.encode() not in k for k in keys)
    cache = gw.gateway.credentials.cache
    cache.max_size = 20
    for i in range(50):
        cache.set(f"k{i}".encode(), None, 10)  # type: ignore[arg-type]
    assert len(cache) <= 20


async def test_iam_unavailable_is_503_on_protected_routes(gw: Harness) -> None:
    gw.iam.fail_with = 500
    resp = await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    gw.iam.fail_with = None  # not cached: works as soon as IAM is back
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 200


async def test_iam_missing_is_503_but_static_key_still_works(
    make_gateway: Callable[..., Awaitable[Harness]]
) -> None:
    from tests.gateway.fakes import echo_app

    gw = await make_gateway(with_defaults=False, services={"provisioning": echo_app()})
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 503
    assert (await gw.client.get(PROTECTED, headers=SERVICE)).status_code == 200


# Each public route (DECISIONS 2), one by one: no credential needed, forwarded as anonymous.
PUBLIC_UNDER_API = sorted((m, p) for m, p in PUBLIC_ROUTES if p.startswith("/api/"))


def test_allowlist_is_exactly_the_decided_routes() -> None:
    assert PUBLIC_ROUTES == {
        ("GET", "/health"), ("GET", "/openapi.json"),
        ("POST", "/api/v1/iam/api/auth/sign-up/email"), ("POST", "/api/v1/iam/api/auth/sign-in/email"),
        ("POST", "/api/v1/iam/api/auth/sign-in/magic-link"), ("GET", "/api/v1/iam/api/auth/magic-link/verify"),
        ("GET", "/api/v1/iam/api/auth/get-session"),
        ("POST", "/api/v1/iam/api/nno/device/code"), ("POST", "/api/v1/iam/api/nno/device/token"),
        ("POST", "/api/v1/iam/api/auth/device/code"), ("POST", "/api/v1/iam/api/auth/device/token"),
        ("GET", "/api/v1/iam/activate"), ("POST", "/api/v1/iam/activate"),
        ("POST", "/api/v1/billing/webhooks/stripe"),
        ("POST", "/api/v1/iam/api/auth/request-password-reset"),
        ("POST", "/api/v1/iam/api/auth/forget-password"),
        ("GET", "/api/v1/iam/api/auth/reset-password"),
        ("POST", "/api/v1/iam/api/auth/reset-password"),
    }


@pytest.mark.parametrize(("method", "path"), PUBLIC_UNDER_API)
async def test_public_route_needs_no_credential(
    make_gateway: Callable[..., Awaitable[Harness]], method: str, path: str
) -> None:
    from tests.gateway.fakes import echo_app

    gw = await make_gateway(services={"billing": echo_app()})
    resp = await gw.client.request(method, path)
    assert resp.status_code == 200, resp.text
    seen = received_headers(resp)
    assert seen["x-nno-auth-type"] == "anonymous"
    # The same route with another method is not public.
    other = "GET" if method == "POST" else "DELETE"
    if (other, path) not in PUBLIC_ROUTES:
        assert (await gw.client.request(other, path)).status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/iam/api/auth/sign-up", "/api/v1/iam/api/auth/sign-up/email/x",
                                  "/api/v1/iam/api/auth/sign-up/emailx", "/api/v1/iam/api/auth//sign-up/email",
                                  "/api/v1/iam/api/nno/session",
                                  "/api/v1/billing/webhooks/stripe/extra", "/api/v1/iam/api/auth/SIGN-UP/email"])
async def test_near_misses_of_public_routes_need_auth(gw: Harness, path: str) -> None:
    assert (await gw.client.post(path)).status_code == 401


async def test_public_route_forwards_a_valid_credential(gw: Harness) -> None:
    resp = await gw.client.post("/api/v1/iam/api/nno/device/token", headers=bearer(SESSION_TOKEN))
    assert received_headers(resp)["x-nno-user-id"] == "user1"


async def test_public_route_ignores_an_invalid_credential(gw: Harness) -> None:
    resp = await gw.client.post("/api/v1/iam/api/auth/sign-in/email", headers=bearer("expired"))
    assert resp.status_code == 200
    assert received_headers(resp)["x-nno-auth-type"] == "anonymous"


async def test_paths_outside_api_are_not_authenticated(gw: Harness) -> None:
    assert (await gw.client.get("/health")).status_code == 200
    assert (await gw.client.get("/nowhere")).status_code == 404


# Local-dev bypass (AUTH_API_KEY unset).
async def test_dev_bypass_passes_credentialless_requests_as_dev(
    make_gateway: Callable[..., Awaitable[Harness]]
) -> None:
    gw = await make_gateway(auth_api_key=None)
    resp = await gw.client.get(PROTECTED)
    assert resp.status_code == 200
    seen = received_headers(resp)
    assert seen["x-nno-auth-type"] == "dev" and seen["x-nno-role"] == "service"


async def test_dev_bypass_still_resolves_and_refuses_credentials(
    make_gateway: Callable[..., Awaitable[Harness]]
) -> None:
    gw = await make_gateway(auth_api_key=None)
    ok = await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))
    assert received_headers(ok)["x-nno-user-id"] == "user1"
    assert (await gw.client.get(PROTECTED, headers=bearer("bad"))).status_code == 401
    assert (await gw.client.get(PROTECTED, headers={"x-api-key": "nno_" + "b" * 40})).status_code == 401
    # With no static key configured, no bearer value is ever the service key.
    assert (await gw.client.get(PROTECTED, headers=bearer(""))).status_code == 401


async def test_static_key_is_compared_with_hmac_compare_digest(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    from nno.gateway import credentials

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    assert (await gw.client.get(PROTECTED, headers=SERVICE)).status_code == 200
    assert calls and all(len(a) == 32 and len(b) == 32 for a, b in calls)  # digests, not raw keys
    assert all(SERVICE["Authorization"][7:].encode() not in a for a, _ in calls)



@settings(max_examples=50, deadline=None)
@given(st.text(max_size=100), st.binary(min_size=32, max_size=32))
def test_static_key_digest_is_hmac_sha256(value: str, key: bytes) -> None:
    import hmac as hmac_module
    from unittest import mock

    from nno.gateway.credentials import CredentialResolver
    from nno.kernel.bindings import Bindings
    from nno.kernel.config import Settings

    with mock.patch("nno.gateway.credentials.secrets.token_bytes", return_value=key):
        resolver = CredentialResolver(Settings(auth_api_key="the-key", data_dir="/tmp/unused"), Bindings())
    assert resolver._digest(value) == hmac_module.digest(key, value.encode(), "sha256")
    assert resolver.is_service_key("the-key") and not resolver.is_service_key(value + "x")
