"""A platform that is gone (`cancelled`, `deleted`) never grows again: every write that would add a
record or change one's configuration answers 409 `PLATFORM_INACTIVE` and writes nothing (not even an
audit row), whoever asks, the service key included. What deprovisioning and job rollbacks need keeps
working: resources marked deleted, DNS records retired, features and stacks wound down, tenants
removed, an onboarding session closed out. `active`, `pending_cancellation` and the restorable
`suspended` take every write; reads keep working on every platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.registry.conftest import ONB, P, User, assert_error, unique

from nno.kernel.platform_status import GONE_STATUSES
from nno.registry import lifecycle

# How to bring a new (`pending`) platform into each status, by documented transitions.
PATHS: dict[str, tuple[str, ...]] = {
    "active": ("bootstrap", "complete"),
    "suspended": ("bootstrap", "complete", "suspend"),
    "pending_cancellation": ("bootstrap", "complete", "cancel"),
    "cancelled": ("bootstrap", "complete", "cancel", "period_end"),
    "deleted": ("bootstrap", "complete", "cancel", "delete"),
}


@dataclass
class Seeded:
    """A platform with one of each record, made while it was active."""

    pid: str
    tenant: str
    bare_tenant: str  # owns no stack, so it can be removed
    stack: str
    resource: str
    hostname: str


async def _act(client: httpx.AsyncClient, h: dict[str, str], pid: str, action: str) -> None:
    resp = await client.post(f"{P}/{pid}/lifecycle", json={"action": action}, headers=h)
    assert resp.status_code == 200, resp.text


async def _ok(resp: Awaitable[httpx.Response], *statuses: int) -> dict[str, Any]:
    r = await resp
    assert r.status_code in (statuses or (200, 201)), r.text
    return dict(r.json())


async def _seed(client: httpx.AsyncClient, h: dict[str, str], status: str) -> Seeded:
    pid = (await _ok(client.post(P, json={"name": "Gone", "slug": unique("gone"), "tier": "scale"}, headers=h)))["id"]
    for action in PATHS["active"]:
        await _act(client, h, pid, action)
    tenant = (await _ok(client.post(f"{P}/{pid}/tenants", json={"name": "T", "slug": unique("t")}, headers=h)))["id"]
    bare = (await _ok(client.post(f"{P}/{pid}/tenants", json={"name": "B", "slug": unique("b")}, headers=h)))["id"]
    stack = (await _ok(client.post(f"{P}/{pid}/stacks", json={"tenantId": tenant, "name": "s"}, headers=h)))["id"]
    resource = (await _ok(client.post(f"{P}/{pid}/resources", headers=h, json={
        "type": "worker", "name": f"{pid}-auth", "cfResourceId": "cf-1", "stackId": stack})))["id"]
    hostname = f"auth.svc.default.{pid}.nno.localhost"
    await _ok(client.post(f"{P}/{pid}/dns-records", headers=h, json={
        "hostname": hostname, "type": "svc", "resourceId": resource, "target": f"{pid}-auth"}))
    await _ok(client.put(f"{P}/{pid}/resources/{resource}/secrets", headers=h,
                         json={"secrets": [{"name": "AUTH_SECRET", "status": "set"}]}))
    await _ok(client.post(f"{P}/{pid}/features", headers=h, json={"featureId": "billing", "version": "1.0.0",
                                                                   "status": "active"}))
    await _ok(client.put(f"{P}/{pid}/build-state", headers=h, json={"environment": "prod", "repoFullName": "o/r"}))
    for action in PATHS[status][len(PATHS["active"]):]:
        await _act(client, h, pid, action)
    assert (await _ok(client.get(f"{P}/{pid}", headers=h)))["status"] == status
    return Seeded(pid, tenant, bare, stack, resource, hostname)


async def _snapshot(client: httpx.AsyncClient, h: dict[str, str], s: Seeded, *,
                    sub_tenants: bool = True) -> dict[str, Any]:
    """Everything the Registry holds about the platform, read back (reads work on gone platforms)."""
    reads = {
        "platform": (f"{P}/{s.pid}", {}),
        "tenants": (f"{P}/{s.pid}/tenants", {"limit": 100}),
        "subTenants": (f"{P}/{s.pid}/tenants/{s.tenant}/sub-tenants", {"limit": 100}),
        "stacks": (f"{P}/{s.pid}/stacks", {"limit": 100}),
        "resources": (f"{P}/{s.pid}/resources", {"limit": 100, "includeDeleted": "true"}),
        "secrets": (f"{P}/{s.pid}/resources/{s.resource}/secrets", {}),
        "dns": (f"{P}/{s.pid}/dns-records", {"limit": 100}),
        "features": (f"{P}/{s.pid}/features", {"limit": 100, "includeInactive": "true"}),
        "buildState": (f"{P}/{s.pid}/build-state", {}),
        "audit": (f"{P}/{s.pid}/audit", {"limit": 100}),
        "lifecycle": (f"{P}/{s.pid}/lifecycle-events", {"limit": 100}),
    }
    if not sub_tenants:  # their parent is gone
        del reads["subTenants"]
    out = {}
    for name, (path, params) in reads.items():
        resp = await client.get(path, params=params, headers=h)
        assert resp.status_code == 200, (name, resp.text)
        out[name] = resp.json()
    return out


# Every way to add to a platform or change its configuration: (label, method, path, body).
def _growing_writes(s: Seeded) -> list[tuple[str, str, str, dict[str, Any]]]:
    pid = s.pid
    new = unique("n")
    return [
        ("create a tenant", "POST", f"{P}/{pid}/tenants", {"name": "Late", "slug": new}),
        ("create a sub-tenant", "POST", f"{P}/{pid}/tenants/{s.tenant}/sub-tenants",
         {"name": "Late", "slug": new + "-sub"}),
        ("create a stack", "POST", f"{P}/{pid}/stacks", {"tenantId": s.tenant, "name": new}),
        ("record a feature activation", "POST", f"{P}/{pid}/features", {"featureId": new, "version": "1.0.0"}),
        ("record a feature activation", "POST", f"{P}/{pid}/features",  # re-activating the existing one
         {"featureId": "billing", "version": "2.0.0", "status": "active"}),
        ("register a resource", "POST", f"{P}/{pid}/resources", {"type": "d1", "name": f"{pid}-{new}"}),
        ("register a resource", "POST", f"{P}/{pid}/resources",  # re-registering the existing one
         {"type": "worker", "name": f"{pid}-auth", "cfResourceId": "cf-2", "stackId": s.stack}),
        ("register a DNS record", "POST", f"{P}/{pid}/dns-records",
         {"hostname": f"{new}.svc.default.{pid}.nno.localhost", "type": "svc"}),
        ("register a DNS record", "POST", f"{P}/{pid}/dns-records",  # re-pointing the existing one
         {"hostname": s.hostname, "type": "svc", "target": "elsewhere"}),
        ("register a DNS record", "POST", f"{P}/{pid}/dns-records",  # "retiring" one that is not there adds it
         {"hostname": f"{new}.app.default.{pid}.nno.localhost", "type": "app", "status": "deleted"}),
        ("record secret status", "PUT", f"{P}/{pid}/resources/{s.resource}/secrets",
         {"secrets": [{"name": "NEW_SECRET", "status": "set"}]}),
        ("record secret status", "PUT", f"{P}/{pid}/resources/{s.resource}/secrets",
         {"secrets": [{"name": "AUTH_SECRET", "status": "rotating"}]}),
        ("record build state", "PUT", f"{P}/{pid}/build-state", {"environment": "dev", "repoFullName": "o/r"}),
        ("record build state", "PUT", f"{P}/{pid}/build-state", {"environment": "prod", "lastBuildStatus": "queued"}),
        ("change the platform's settings", "PATCH", f"{P}/{pid}", {"name": "Renamed"}),
        ("change the platform's settings", "PATCH", f"{P}/{pid}", {"tier": "growth"}),
        ("update a tenant", "PATCH", f"{P}/{pid}/tenants/{s.tenant}", {"name": "Renamed"}),
        ("update a stack", "PATCH", f"{P}/{pid}/stacks/{s.stack}", {"name": "renamed"}),
        ("update a stack", "PATCH", f"{P}/{pid}/stacks/{s.stack}", {"status": "active"}),
        ("update a stack", "PATCH", f"{P}/{pid}/stacks/{s.stack}", {"status": "deactivated", "name": "x"}),
        ("update a resource", "PATCH", f"{P}/{pid}/resources/{s.resource}", {"cfResourceId": "cf-3"}),
        ("update a resource", "PATCH", f"{P}/{pid}/resources/{s.resource}", {"status": "active"}),
        ("update a resource", "PATCH", f"{P}/{pid}/resources/{s.resource}", {"status": "deleted", "metadata": {}}),
    ]


@pytest.mark.parametrize("status", sorted(GONE_STATUSES))
async def test_a_gone_platform_refuses_every_create_and_change_and_writes_nothing(
        client: httpx.AsyncClient, service_headers: dict[str, str], status: str) -> None:
    h = service_headers
    s = await _seed(client, h, status)
    before = await _snapshot(client, h, s)
    for operation, method, path, body in _growing_writes(s):
        err = assert_error(await client.request(method, path, json=body, headers=h), 409, "PLATFORM_INACTIVE")
        assert err["details"]["status"] == status and err["details"]["platformId"] == s.pid, (operation, err)
        assert err["details"]["operation"] == operation, err
        assert err["details"]["kind"] in ("grow", "configure"), err
        assert status in err["message"], err
        assert await _snapshot(client, h, s) == before, (operation, method, path, body)


@pytest.mark.parametrize("status", ["active", "suspended", "pending_cancellation"])
async def test_a_live_or_restorable_platform_takes_the_same_writes(
        client: httpx.AsyncClient, service_headers: dict[str, str], status: str) -> None:
    h = service_headers
    s = await _seed(client, h, status)
    before = await _snapshot(client, h, s)
    for operation, method, path, body in _growing_writes(s):
        resp = await client.request(method, path, json=body, headers=h)
        assert resp.status_code in (200, 201), (operation, body, resp.text)
    after = await _snapshot(client, h, s)
    assert after["platform"]["status"] == status and after["platform"]["name"] == "Renamed"
    for listing in ("tenants", "subTenants", "stacks", "resources", "dns", "features"):
        assert after[listing]["pagination"]["total"] > before[listing]["pagination"]["total"], listing
    assert len(after["buildState"]["data"]) == 2 and len(after["secrets"]["data"]) == 2


@pytest.mark.parametrize("status", sorted(GONE_STATUSES))
async def test_a_gone_platform_still_sheds_what_it_has(
        client: httpx.AsyncClient, service_headers: dict[str, str], status: str) -> None:
    """The Registry calls deprovisioning and rollbacks make (see nno.provisioning.registry_client)."""
    h = service_headers
    s = await _seed(client, h, status)
    dns_before = (await _ok(client.get(f"{P}/{s.pid}/dns-records", headers=h)))["data"][0]
    # DNS: re-registered as `deleted` it retires, keeping what it pointed at (the audit trail) even
    # when the body leaves fields out, as deprovisioning's retire does.
    retired = await _ok(client.post(f"{P}/{s.pid}/dns-records", headers=h, json={
        "hostname": s.hostname, "type": "svc", "status": "deleted"}), 200)
    assert retired["status"] == "deleted"
    assert {k: v for k, v in retired.items() if k not in ("status", "updatedAt")} == \
        {k: v for k, v in dns_before.items() if k not in ("status", "updatedAt")}
    # Resources: marked deleted (DELETE, or PATCH of the status alone).
    gone_res = await _ok(client.delete(f"{P}/{s.pid}/resources/{s.resource}", headers=h))
    assert gone_res["status"] == "deleted" and gone_res["deletedAt"]
    again = await _ok(client.patch(f"{P}/{s.pid}/resources/{s.resource}", json={"status": "deleted"}, headers=h))
    assert again["status"] == "deleted"
    # Features: deactivated.
    off = await _ok(client.delete(f"{P}/{s.pid}/features/billing", headers=h))
    assert off["status"] == "inactive"
    # Stacks: wound down (DEACTIVATE_STACK's end, or a failed job).
    assert (await _ok(client.patch(f"{P}/{s.pid}/stacks/{s.stack}", json={"status": "failed"},
                                   headers=h)))["status"] == "failed"
    assert (await _ok(client.patch(f"{P}/{s.pid}/stacks/{s.stack}", json={"status": "deactivated"},
                                   headers=h)))["status"] == "deactivated"
    # Tenants: removed, now that none owns a live stack.
    for tenant in (s.bare_tenant, s.tenant):
        assert (await _ok(client.delete(f"{P}/{s.pid}/tenants/{tenant}", headers=h)))["status"] == "deleted"
    after = await _snapshot(client, h, s, sub_tenants=False)
    assert after["tenants"]["data"] == [t for t in after["tenants"]["data"] if t["slug"] == "default"]
    assert all(r["status"] == "deleted" for r in after["resources"]["data"])
    assert all(d["status"] == "deleted" for d in after["dns"]["data"])
    assert all(f["status"] == "inactive" for f in after["features"]["data"])
    # Repeating a removal of what is already gone is still not a create.
    assert_error(await client.delete(f"{P}/{s.pid}/features/billing", headers=h), 404, "NOT_FOUND")


async def test_an_onboarding_session_of_a_gone_platform_can_only_be_closed_out(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]]) -> None:
    h = service_headers
    owner = await make_user("owner")
    session = await _ok(client.post(ONB, json={"platformName": "Onb", "slug": unique("onb"), "tier": "scale"},
                                    headers=owner.headers), 201)
    pid = session["platformId"]
    for action in PATHS["deleted"]:
        await _act(client, h, pid, action)
    url = f"{ONB}/{session['id']}"
    before = await _ok(client.get(url, headers=h))
    for body in ({"steps": [{"name": "provision_infra", "status": "completed"}]},
                 {"steps": [{"name": "setup_repo", "status": "in_progress"}]},
                 {"status": "completed"},
                 {"provisionJobId": "job-new"},
                 {"steps": [{"name": "provision_infra", "status": "failed"}], "status": "in_progress"}):
        err = assert_error(await client.patch(url, json=body, headers=h), 409, "PLATFORM_INACTIVE")
        assert err["details"]["operation"] == "report onboarding progress"
        assert await _ok(client.get(url, headers=h)) == before, body
    closed = await _ok(client.patch(url, headers=h, json={
        "steps": [{"name": "provision_infra", "status": "failed", "error": "platform deleted"},
                  {"name": "setup_repo", "status": "skipped"}],
        "status": "failed", "error": "platform deleted"}))
    assert closed["status"] == "failed"
    assert {st_["name"]: st_["status"] for st_ in closed["steps"]}["provision_infra"] == "failed"


async def test_a_suspended_platform_reports_onboarding_progress(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]]) -> None:
    owner = await make_user("owner")
    session = await _ok(client.post(ONB, json={"platformName": "Onb", "slug": unique("onb"), "tier": "scale"},
                                    headers=owner.headers), 201)
    for action in PATHS["suspended"]:
        await _act(client, service_headers, session["platformId"], action)
    resp = await client.patch(f"{ONB}/{session['id']}", headers=service_headers,
                              json={"steps": [{"name": "setup_repo", "status": "in_progress"}]})
    assert resp.status_code == 200, resp.text


# --- any sequence of lifecycle actions and writes ---------------------------------------------

WRITES = ("tenant", "stack", "feature", "resource", "dns", "build", "rename")
# A lifecycle step is mostly one of the actions legal from the current state (picked by index when the
# step runs), so sequences do reach `cancelled` and `deleted`; sometimes any action, legal or not.
STEP = st.one_of(st.integers(0, 3).map(lambda i: ("legal", str(i))),
                 st.sampled_from(lifecycle.ACTIONS).map(lambda a: ("lifecycle", a)),
                 st.sampled_from(WRITES).map(lambda w: ("write", w)))


async def _write(client: httpx.AsyncClient, h: dict[str, str], pid: str, tenant: str, kind: str) -> httpx.Response:
    new = unique("w")
    request: dict[str, tuple[str, str, dict[str, Any]]] = {
        "tenant": ("POST", f"{P}/{pid}/tenants", {"name": "W", "slug": new}),
        "stack": ("POST", f"{P}/{pid}/stacks", {"tenantId": tenant, "name": new}),
        "feature": ("POST", f"{P}/{pid}/features", {"featureId": new, "version": "1"}),
        "resource": ("POST", f"{P}/{pid}/resources", {"type": "kv", "name": f"{pid}-{new}"}),
        "dns": ("POST", f"{P}/{pid}/dns-records", {"hostname": f"{new}.svc.default.{pid}.x", "type": "svc"}),
        "build": ("PUT", f"{P}/{pid}/build-state", {"environment": "dev", "repoFullName": f"o/{new}"}),
        "rename": ("PATCH", f"{P}/{pid}", {"name": new}),
    }
    method, path, body = request[kind]
    return await client.request(method, path, json=body, headers=h)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=10))
async def test_any_sequence_refuses_writes_exactly_while_the_platform_is_gone(
        client: httpx.AsyncClient, service_headers: dict[str, str], steps: list[tuple[str, str]]) -> None:
    h = service_headers
    pid = (await _ok(client.post(P, json={"name": "Seq", "slug": unique("seq"), "tier": "scale"}, headers=h)))["id"]
    tenant = (await _ok(client.get(f"{P}/{pid}/tenants", headers=h)))["data"][0]["id"]
    status, written = "pending", {"tenant": 1, "stack": 1, "feature": 0, "resource": 0, "dns": 0}
    for step, what in steps:
        if step == "legal":
            legal = lifecycle.allowed_actions(status) or ["delete"]
            step, what = "lifecycle", legal[int(what) % len(legal)]
        if step == "lifecycle":
            resp = await client.post(f"{P}/{pid}/lifecycle", json={"action": what}, headers=h)
            if resp.status_code == 200:
                status = resp.json()["status"]
            else:
                assert_error(resp, 409, "INVALID_TRANSITION")
            continue
        resp = await _write(client, h, pid, tenant, what)
        if status in ("cancelled", "deleted"):
            assert_error(resp, 409, "PLATFORM_INACTIVE")
        else:
            assert resp.status_code in (200, 201), (status, what, resp.text)
            if what in written:
                written[what] += 1
    counts = {
        "tenant": (f"{P}/{pid}/tenants", {}), "stack": (f"{P}/{pid}/stacks", {}),
        "feature": (f"{P}/{pid}/features", {"includeInactive": "true"}),
        "resource": (f"{P}/{pid}/resources", {"includeDeleted": "true"}), "dns": (f"{P}/{pid}/dns-records", {}),
    }
    for kind, (path, params) in counts.items():
        assert (await _ok(client.get(path, params=params, headers=h)))["pagination"]["total"] == written[kind], kind
