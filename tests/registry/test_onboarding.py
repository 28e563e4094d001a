"""Self-serve onboarding: a signed-in user gets a pending platform they own and administer, a
five-step session, and (when Provisioning is deployed) a PROVISION_PLATFORM job that drives the
platform to `active`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.conftest import running_core
from tests.registry.conftest import IAM, ONB, PASSWORD, P, User, assert_error, audit_actions, unique

from nno.core import Core
from nno.kernel.config import Settings

STEPS = ["create_platform", "provision_infra", "setup_repo", "deploy_services", "verify"]


async def _wait_for(client: httpx.AsyncClient, headers: dict[str, str], session_id: str,
                    done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(400):
        body = (await client.get(f"{ONB}/{session_id}", headers=headers)).json()
        if done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"onboarding did not get there: {body}")


def _step(session: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in session["steps"] if s["name"] == name)


async def test_onboarding_creates_an_owned_platform_that_provisioning_makes_active(
        client: httpx.AsyncClient, core: Core, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]]) -> None:
    user = await make_user("founder")
    slug = unique("founder")
    resp = await client.post(ONB, json={"platformName": "Founder Co", "slug": slug, "tier": "growth"},
                             headers=user.headers)
    assert resp.status_code == 201, resp.text
    session = resp.json()
    pid = session["platformId"]
    assert session["userId"] == user.id and session["tier"] == "growth" and session["slug"] == slug
    assert [s["name"] for s in session["steps"]] == STEPS
    assert _step(session, "create_platform")["status"] == "completed"
    # The CLI Service made the platform repository; its first build waits for the platform.
    assert _step(session, "setup_repo")["status"] == "completed", session
    assert f"nno-platform-{pid}" in _step(session, "setup_repo")["note"]
    assert session["provisionJobId"] and _step(session, "provision_infra")["jobId"] == session["provisionJobId"]

    platform = (await client.get(f"{P}/{pid}", headers=user.headers)).json()
    assert platform["ownerUserId"] == user.id and platform["slug"] == slug and platform["tier"] == "growth"
    members = (await client.get(f"{IAM}/api/nno/platform-members", params={"userId": user.id},
                                headers=service_headers)).json()["data"]
    assert {(m["platformId"], m["role"]) for m in members} == {(pid, "platform-admin")}

    final = await _wait_for(client, user.headers, session["id"], lambda b: b["status"] != "in_progress")
    assert _step(final, "provision_infra")["status"] == "completed"
    assert _step(final, "verify")["status"] == "completed"
    assert _step(final, "deploy_services")["status"] == "completed", final  # the console built from the repo
    assert final["status"] == "completed"
    assert (await client.get(f"{P}/{pid}", headers=user.headers)).json()["status"] == "active"
    assert await core.kv.get(f"platform-status:{pid}") == "active"
    resources = (await client.get(f"{P}/{pid}/resources", headers=user.headers)).json()["data"]
    assert f"{pid}-default-auth" in {r["name"] for r in resources}
    actions = await audit_actions(client, service_headers, pid)
    assert {"platform.create", "onboarding.create", "onboarding.step_update", "platform.status_change"} <= set(
        actions)

    # The gateway enforces what the Registry publishes: a fresh session on the suspended platform gets 451.
    suspended = await client.post(f"{P}/{pid}/lifecycle", json={"action": "suspend", "reason": "abuse"},
                                  headers=service_headers)
    assert suspended.json()["status"] == "suspended"
    signed_in = await client.post(f"{IAM}/api/auth/sign-in/email", json={"email": user.email, "password": PASSWORD})
    client.cookies.clear()
    fresh = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    assert_error(await client.get(f"{P}/{pid}", headers=fresh), 451, "PLATFORM_SUSPENDED")
    # The owner may cancel (from suspended), once the operator lets them back in.
    await client.post(f"{P}/{pid}/lifecycle", json={"action": "restore"}, headers=service_headers)
    cancelled = await client.post(f"{P}/{pid}/lifecycle", json={"action": "cancel", "reason": "moving on"},
                                  headers=fresh)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "pending_cancellation"
    assert_error(await client.post(f"{P}/{pid}/lifecycle", json={"action": "suspend"}, headers=fresh), 403)


async def test_onboarding_input_and_access(client: httpx.AsyncClient, service_headers: dict[str, str],
                                           make_user: Callable[..., Awaitable[User]]) -> None:
    user, other = await make_user("obi"), await make_user("other")
    good = {"platformName": "Obi", "slug": unique("obi"), "tier": "starter"}
    for body in ({**good, "tier": None}, {k: v for k, v in good.items() if k != "tier"},
                 {**good, "slug": "Bad Slug"}, {**good, "platformName": ""}, {**good, "tier": "gold"},
                 {**good, "extra": True}):
        assert_error(await client.post(ONB, json=body, headers=user.headers), 400, "VALIDATION_ERROR")
    assert_error(await client.post(ONB, json=good), 401)
    assert_error(await client.post(ONB, json=good, headers=service_headers), 401, "UNAUTHORIZED")
    created = await client.post(ONB, json=good, headers=user.headers)
    assert created.status_code == 201
    session = created.json()
    assert_error(await client.post(ONB, json={**good, "platformName": "Again"}, headers=other.headers),
                 409, "SLUG_TAKEN")
    assert (await client.get(P, headers=service_headers)).json()["pagination"]["total"] == 1

    assert_error(await client.get(f"{ONB}/{session['id']}", headers=other.headers), 404)
    assert_error(await client.get(f"{ONB}/nosuchsess", headers=user.headers), 404)
    assert (await client.get(f"{ONB}/{session['id']}", headers=service_headers)).status_code == 200
    # Only services report progress.
    patch = {"steps": [{"name": "setup_repo", "status": "in_progress", "note": "creating repo"}]}
    assert_error(await client.patch(f"{ONB}/{session['id']}", json=patch, headers=user.headers), 403)
    for bad in ({"steps": [{"name": "make_coffee", "status": "completed"}]},
                {"steps": [{"name": "verify", "status": "done"}]},
                {"steps": [{"name": "verify", "status": "failed"}, {"name": "verify", "status": "completed"}]},
                {"status": "exploded"}):
        assert_error(await client.patch(f"{ONB}/{session['id']}", json=bad, headers=service_headers), 400)
    updated = await client.patch(f"{ONB}/{session['id']}", json=patch, headers=service_headers)
    assert updated.status_code == 200, updated.text
    step = _step(updated.json(), "setup_repo")
    assert step["status"] == "in_progress" and step["note"] == "creating repo" and step["startedAt"]
    failed = await client.patch(f"{ONB}/{session['id']}", headers=service_headers,
                                json={"steps": [{"name": "setup_repo", "status": "failed", "error": "no token"}]})
    assert failed.json()["status"] == "failed" and _step(failed.json(), "setup_repo")["error"] == "no token"


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    """The whole core: onboarding drives Provisioning (and its local cloud) for real."""
    async with running_core(settings) as instance:
        yield instance


@pytest.fixture
async def core_without_provisioning(make_settings: Callable[..., Settings]) -> AsyncIterator[Core]:
    instance = Core(make_settings(), services=["iam", "registry"], with_edge=False)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


async def test_steps_whose_service_is_missing_stay_pending_and_say_so(
        core_without_provisioning: Core) -> None:
    transport = httpx.ASGITransport(app=core_without_provisioning.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as client:
        email = f"{unique('solo')}@example.com"
        signed = await client.post(f"{IAM}/api/auth/sign-up/email",
                                   json={"email": email, "password": PASSWORD, "name": "Solo"})
        client.cookies.clear()
        headers = {"Authorization": f"Bearer {signed.json()['token']}"}
        resp = await client.post(ONB, json={"platformName": "Solo", "slug": unique("solo"), "tier": "scale"},
                                 headers=headers)
        assert resp.status_code == 201, resp.text
        session = resp.json()
        infra = _step(session, "provision_infra")
        assert infra["status"] == "pending" and "provisioning service is not deployed" in infra["note"]
        assert session["provisionJobId"] is None
        assert (await client.get(f"{P}/{session['platformId']}", headers=headers)).json()["status"] == "pending"


async def test_other_methods_on_onboarding_routes_are_not_read_as_platform_routes(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    for method, path, status, allow in [("PATCH", ONB, 405, "POST"), ("GET", ONB, 405, "POST"),
                                        ("DELETE", f"{ONB}/abc", 405, "GET, HEAD, PATCH"),
                                        ("POST", f"{ONB}/abc/lifecycle", 404, None)]:
        resp = await client.request(method, path, headers=service_headers, json={})
        err = assert_error(resp, status, "METHOD_NOT_ALLOWED" if status == 405 else "NOT_FOUND")
        assert "Platform" not in err["message"]
        if allow:
            assert resp.headers["allow"] == allow


async def test_a_user_owns_as_many_live_platforms_as_the_tier_allows(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]]) -> None:
    user = await make_user("founder")
    first = await client.post(ONB, json={"platformName": "One", "slug": unique("one"), "tier": "starter"},
                              headers=user.headers)
    assert first.status_code == 201, first.text
    second = await client.post(ONB, json={"platformName": "Two", "slug": unique("two"), "tier": "starter"},
                               headers=user.headers)
    err = assert_error(second, 409, "PLATFORM_LIMIT_REACHED")
    assert err["details"]["limit"] == 1 and err["details"]["upgradeTo"] == "growth"
    assert "upgrade to growth" in err["message"]
    listed = (await client.get(P, headers=user.headers)).json()["data"]
    assert [p["name"] for p in listed] == ["One"]  # nothing half-written
    # growth allows three, counting the starter one.
    for name in ("G1", "G2"):
        ok = await client.post(ONB, json={"platformName": name, "slug": unique("g"), "tier": "growth"},
                               headers=user.headers)
        assert ok.status_code == 201, ok.text
    assert_error(await client.post(ONB, json={"platformName": "G3", "slug": unique("g"), "tier": "growth"},
                                   headers=user.headers), 409, "PLATFORM_LIMIT_REACHED")
    scale = await client.post(ONB, json={"platformName": "S", "slug": unique("s"), "tier": "scale"},
                              headers=user.headers)
    assert scale.status_code == 201, scale.text
    # A cancelled platform no longer counts.
    other = await make_user("again")
    one = await client.post(ONB, json={"platformName": "Mine", "slug": unique("m"), "tier": "starter"},
                            headers=other.headers)
    pid = one.json()["platformId"]
    for action in ("bootstrap", "complete", "cancel", "period_end"):
        r = await client.post(f"{P}/{pid}/lifecycle", json={"action": action}, headers=service_headers)
        assert r.status_code == 200, r.text
    again = await client.post(ONB, json={"platformName": "Again", "slug": unique("a"), "tier": "starter"},
                              headers=other.headers)
    assert again.status_code == 201, again.text
