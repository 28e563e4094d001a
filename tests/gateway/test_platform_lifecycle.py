"""platformLifecycle: 451 for suspended, 410 for cancelled/deleted; KV first, Registry fallback;
service and dev callers bypass; fail open when the status is unknowable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

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


# --- the platform a request addresses (issue 10, item 4) ------------------------------------------

ADDRESSING = [
    ("GET", "/api/v1/platforms/plat9", None),
    ("PATCH", "/api/v1/platforms/plat9/tenants/t1", None),
    ("GET", "/api/v1/provisioning/provision/jobs?limit=5&platformId=plat9", None),
    ("POST", "/api/v1/provisioning/provision/stack/activate", {"platformId": "plat9", "stackId": "s"}),
    ("POST", "/api/v1/iam/api/nno/apikey", {"name": "k", "platformId": "plat9"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADDRESSING)
@pytest.mark.parametrize("credential", ["session", "key"])
async def test_a_request_addressing_a_suspended_platform_is_451_whatever_the_callers_platform(
        gw: Harness, method: str, path: str, body: dict[str, str] | None, credential: str) -> None:
    """The session's platform is plat1 and the key's plat2, both active; plat9 is suspended."""
    await gw.kv.set("platform-status:plat9", "suspended")
    headers = bearer(SESSION_TOKEN) if credential == "session" else {"x-api-key": API_KEY}
    resp = await gw.client.request(method, path, json=body, headers=headers)
    assert resp.status_code == 451 and resp.json()["error"]["code"] == "PLATFORM_SUSPENDED"
    await gw.kv.set("platform-status:plat9", "deleted")
    assert (await gw.client.request(method, path, json=body, headers=headers)).status_code == 410
    # Operators and services act on it (restore it...).
    await gw.kv.set("platform-status:plat9", "suspended")
    for privileged in (bearer(OPERATOR_TOKEN), SERVICE):
        assert (await gw.client.request(method, path, json=body, headers=privileged)).status_code == 200


async def test_the_body_read_for_its_platform_reaches_the_service_whole(gw: Harness) -> None:
    await gw.kv.set("platform-status:plat9", "active")
    sent = json.dumps({"platformId": "plat9", "pad": "x" * 70_000}).encode()  # several receive messages
    resp = await gw.client.post("/api/v1/provisioning/upload", content=sent, headers=bearer(SESSION_TOKEN))
    assert resp.status_code == 200, resp.text
    assert resp.json()["size"] == len(sent) and resp.json()["sha256"] == hashlib.sha256(sent).hexdigest()
    # Not JSON, a JSON list, a number as platformId: nothing named, the request passes.
    for raw in (b"platformId=plat9", b'[{"platformId": "plat9"}]', b'{"platformId": 9}', b'{"platformId"'):
        await gw.kv.set("platform-status:plat9", "suspended")
        resp = await gw.client.post("/api/v1/provisioning/upload", content=raw, headers=bearer(SESSION_TOKEN))
        assert resp.status_code == 200 and resp.json()["size"] == len(raw)


async def test_a_chunked_body_over_the_limit_is_still_413_and_one_under_it_is_read(
        make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(max_body_bytes=1000)
    await gw.kv.set("platform-status:plat9", "suspended")

    def chunks(data: bytes) -> Any:
        async def gen() -> Any:
            for i in range(0, len(data), 300):
                yield data[i:i + 300]
        return gen()

    small = json.dumps({"platformId": "plat9"}).encode()
    resp = await gw.client.post("/api/v1/provisioning/upload", content=chunks(small), headers=bearer(SESSION_TOKEN))
    assert resp.status_code == 451
    big = json.dumps({"platformId": "plat9", "pad": "x" * 2000}).encode()
    resp = await gw.client.post("/api/v1/provisioning/upload", content=chunks(big), headers=bearer(SESSION_TOKEN))
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_only_platform_ids_are_looked_up(gw: Harness) -> None:
    """`/platforms/by-slug/...`, the collection and other query names name no platform: once the
    caller's own status is known, they cost no lookup."""
    gw.registry.statuses["plat1"] = "active"
    assert (await gw.client.get("/api/v1/platforms", headers=bearer(SESSION_TOKEN))).status_code == 200
    assert gw.registry.status_calls == 1
    for path in ("/api/v1/platforms/", "/api/v1/platforms/by-slug/acme",
                 "/api/v1/provisioning/provision/jobs?platformIdx=plat9&x=platformId"):
        assert (await gw.client.get(path, headers=bearer(SESSION_TOKEN))).status_code == 200
    assert gw.registry.status_calls == 1
    # A platform id in the path is one more lookup.
    assert (await gw.client.get("/api/v1/platforms/plat9", headers=bearer(SESSION_TOKEN))).status_code == 200
    assert gw.registry.status_calls == 2



@pytest.mark.parametrize("gone", ["suspended", "deleted"])
async def test_a_session_addressing_another_platform_is_judged_by_that_one(gw: Harness, gone: str) -> None:
    """The session's active platform plat1 is suspended or gone; plat9 is active. Requests naming
    plat9 (path, query, body) or looking a platform up by slug pass; requests naming none are still
    judged by plat1. An API key is always judged by its own platform."""
    await gw.kv.set("platform-status:plat1", gone)
    await gw.kv.set("platform-status:plat9", "active")
    for method, path, body in ADDRESSING:
        resp = await gw.client.request(method, path, json=body, headers=bearer(SESSION_TOKEN))
        assert resp.status_code == 200, (path, resp.text)
    assert (await gw.client.get("/api/v1/platforms/by-slug/acme", headers=bearer(SESSION_TOKEN))).status_code == 200
    assert (await gw.client.get(PROTECTED, headers=bearer(SESSION_TOKEN))).status_code in (451, 410)
    await gw.kv.set("platform-status:plat2", gone)  # the key's platform
    resp = await gw.client.get("/api/v1/platforms/plat9", headers={"x-api-key": API_KEY})
    assert resp.status_code in (451, 410)
