"""platformLifecycle: 451 for suspended, 410 for cancelled/deleted; KV first, Registry fallback;
service and dev callers bypass; fail open when the status is unknowable."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from tests.gateway.conftest import API_KEY, OPERATOR_TOKEN, SERVICE, SESSION_TOKEN, Harness, bearer

PROTECTED = "/api/v1/provisioning/x"  # the session's platform is plat1, the key's plat2


async def test_suspended_platform_is_451_with_the_seeds_exact_body(gw: Harness) -> None:
    await gw.kv.set("platform-status:plat1", "suspended")
    resp = await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))
    assert resp.status_code == 451
    rid = resp.headers["x-request-id"]
    assert resp.content == json.dumps(
        {"error": {"code": "PLATFORM_SUSPENDED", "message": "This platform has been suspended.", "requestId": rid}},
        separators=(",", ":")).encode()


async def test_api_key_platform_is_checked(gw: Harness) -> None:
    await gw.kv.set("platform-status:plat2", "suspended")
    assert (await gw.client.get(PROTECTED, headers={"x-api-key": API_KEY})).status_code == 451


@pytest.mark.parametrize("status", ["cancelled", "deleted"])
async def test_gone_platform_is_410(gw: Harness, status: str) -> None:
    await gw.kv.set("platform-status:plat1", status)
    resp = await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "PLATFORM_GONE"


@pytest.mark.parametrize("status", ["pending", "provisioning", "active", "pending_cancellation"])
async def test_live_states_pass(gw: Harness, status: str) -> None:
    await gw.kv.set("platform-status:plat1", status)
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 200


async def test_service_key_bypasses_the_check(gw: Harness) -> None:
    await gw.kv.set("platform-status:plat1", "suspended")
    forged = {**SERVICE, "X-Nno-Platform-Id": "plat1"}
    assert (await gw.client.get(PROTECTED, headers=forged)).status_code == 200


async def test_dev_bypass_skips_the_check(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(auth_api_key=None)
    await gw.kv.set("platform-status:plat1", "suspended")
    assert (await gw.client.get(PROTECTED)).status_code == 200
    # ...but a real session in dev mode is still checked.
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 451


async def test_no_platform_means_no_check(gw: Harness) -> None:
    assert (await gw.client.get(PROTECTED, headers=bearer(OPERATOR_TOKEN))).status_code == 200
    assert gw.registry.status_calls == 0


async def test_registry_fallback_and_its_cache(gw: Harness) -> None:
    gw.registry.statuses["plat1"] = "suspended"
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 451
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 451
    assert gw.registry.status_calls == 1  # cached in-process
    # The KV, written by the Registry on every change, wins over the cached fallback.
    await gw.kv.set("platform-status:plat1", "active")
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 200


async def test_unknown_platform_fails_open(gw: Harness) -> None:
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 200
    assert gw.registry.status_calls == 1


async def test_registry_down_fails_open_with_a_log(gw: Harness) -> None:
    gw.registry.fail_with = 500
    with capture_logs() as logs:
        assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code == 200
    assert any(e["event"] == "platform_status_unavailable_fail_open" for e in logs)


async def test_registry_missing_fails_open(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    from tests.gateway.fakes import FakeIAM, echo_app

    iam = FakeIAM()
    iam.sessions["t"] = {"userId": "u", "platformId": "p9"}
    gw = await make_gateway(with_defaults=False, services={"iam": iam.app(), "provisioning": echo_app()})
    assert (await gw.client.get(PROTECTED, headers=bearer("t"))).status_code == 200


async def test_a_suspended_member_can_still_leave(gw: Harness) -> None:
    await gw.kv.set("platform-status:plat1", "suspended")
    for method, path in [("GET", "/api/v1/iam/api/nno/session"),
                         ("POST", "/api/v1/iam/api/nno/session/active-platform"),
                         ("POST", "/api/v1/iam/api/auth/sign-out")]:
        resp = await gw.client.request(method, path, headers=bearer(SESSION_TOKEN))
        assert resp.status_code != 451, path
    assert (await gw.client.get("/api/v1/iam/api/nno/apikey", headers=bearer(SESSION_TOKEN))).status_code == 451
