"""ACTIVATE_STACK from a Stack Registry template (Path A) or a platform-local definition (Path B),
and DEACTIVATE_STACK, through the gateway with the real Registry and Stack Registry and an in-test
cloud. The member features are the test feature packages (tests/fixtures/features)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.provisioning.conftest import PROV, create_platform, list_data, run_job, wait_job
from tests.provisioning.fakes import FakeCloud, Fault
from tests.provisioning.test_api import assert_error, default_tenant, make_admin, sign_up

P = "/api/v1/platforms"
S = "/api/v1/stacks"
ACTIVATE_ORDER = ["fetch_stack_definition", "snapshot_stack_data", "create_shared_resources",
                  "deploy_feature_workers", "run_feature_migrations", "register_dns", "register_permissions",
                  "register_resources", "record_feature_activations", "record_stack_version",
                  "remove_dropped_features", "trigger_shell_rebuild", "drop_snapshot"]
V1 = {"resources": {"d1": True, "kv": True},
      "features": [{"id": "crm", "version": "^1.0.0"}, {"id": "analytics", "tablePrefix": "stats_"}]}
V2 = {"resources": {"d1": True, "kv": True, "r2": True},
      "features": [{"id": "crm", "version": "^1.2.0"}, {"id": "billing", "bindings": ["d1"]}]}


async def template(client: httpx.AsyncClient, h: dict[str, str], name: str = "sales-suite") -> str:
    resp = await client.post(S, json={"name": name, "displayName": "Sales", "description": "CRM and analytics"},
                             headers=h)
    assert resp.status_code == 201, resp.text
    for version, definition in (("1.0.0", V1), ("1.1.0", V2)):
        resp = await client.post(f"{S}/{name}/versions", json={"version": version, "definition": definition},
                                 headers=h)
        assert resp.status_code == 201, resp.text
    return name


async def new_stack(client: httpx.AsyncClient, h: dict[str, str], pid: str, **fields: Any) -> str:
    tenant = await default_tenant(client, h, pid)
    resp = await client.post(f"{P}/{pid}/stacks", json={"tenantId": tenant, "name": "sales", **fields}, headers=h)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def config_of(fake: FakeCloud, worker: str) -> dict[str, Any]:
    return dict(json.loads(fake.secrets[(worker, "NNO_FEATURE_CONFIG")]))


async def test_path_a_activates_the_latest_version_once_and_records_it(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    name = await template(client, h)
    pid = await create_platform(client, h)
    sid = await new_stack(client, h, pid, templateId=name)
    # The stack row names the template: the request need not.
    job = await run_job(client, h, "/provision/stack/activate", {"platformId": pid, "stackId": sid})
    assert job["status"] == "COMPLETED", job
    assert [s["name"] for s in job["steps"]] == ACTIVATE_ORDER
    assert job["payload"]["templateId"] == name and job["payload"]["templateVersion"] == "1.1.0"  # pinned
    shared = {"DB": f"{pid}-{sid}-db", "STORAGE": f"{pid}-{sid}-storage", "KV": f"{pid}-{sid}-kv"}
    assert fake.names("d1") == {shared["DB"]} and fake.names("r2") == {shared["STORAGE"]}
    assert fake.created[("d1", shared["DB"])] == 1
    crm, billing = f"{pid}-{sid}-crm", f"{pid}-{sid}-billing"
    assert fake.resources[("worker", crm)]["bindings"] == shared
    assert fake.resources[("worker", billing)]["bindings"] == {"DB": shared["DB"]}  # it binds d1 only
    assert (config_of(fake, crm)["tablePrefix"], config_of(fake, crm)["keyPrefix"]) == ("crm_", "crm/")
    assert config_of(fake, billing)["stackId"] == sid
    assert sorted(fake.lifecycle) == sorted([(crm, "activate"), (billing, "activate")])
    assert ("worker", f"{pid}-{sid}-analytics") not in fake.resources  # only in 1.0.0
    for feature in ("crm", "billing"):
        assert ("dns", f"{feature}.svc.{sid}.{pid}.nno.localhost") in fake.resources
    stack = (await client.get(f"{P}/{pid}/stacks/{sid}", headers=h)).json()
    assert (stack["status"], stack["templateId"], stack["templateVersion"]) == ("active", name, "1.1.0")
    features = {f["featureId"]: f for f in await list_data(client, h, f"{P}/{pid}/features")}
    assert {k: (v["version"], v["stackId"]) for k, v in features.items()} == {
        "crm": ("1.2.0", sid), "billing": ("1.0.0", sid)}  # the installed versions
    resources = [r for r in await list_data(client, h, f"{P}/{pid}/resources") if r["stackId"] == sid]
    assert sorted((r["type"], r["name"]) for r in resources) == sorted(
        [("d1", shared["DB"]), ("r2", shared["STORAGE"]), ("kv", shared["KV"]), ("worker", crm),
         ("worker", billing)])


async def test_path_a_with_a_pinned_older_version(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                   fake: FakeCloud) -> None:
    h = service_headers
    name = await template(client, h)
    pid = await create_platform(client, h)
    sid = await new_stack(client, h, pid)
    job = await run_job(client, h, "/provision/stack/activate",
                        {"platformId": pid, "stackId": sid, "templateId": name, "templateVersion": "1.0.0"})
    assert job["status"] == "COMPLETED", job
    analytics = f"{pid}-{sid}-analytics"
    assert config_of(fake, analytics)["tablePrefix"] == "stats_"
    assert fake.names("r2") == set()
    stack = (await client.get(f"{P}/{pid}/stacks/{sid}", headers=h)).json()
    assert (stack["templateId"], stack["templateVersion"]) == (name, "1.0.0")


async def test_path_b_a_platform_local_definition(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                  fake: FakeCloud) -> None:
    h = service_headers
    pid = await create_platform(client, h)
    sid = await new_stack(client, h, pid)
    definition = {"resources": {"kv": True}, "features": [{"id": "late", "keyPrefix": "l8/"}]}
    job = await run_job(client, h, "/provision/stack/activate",
                        {"platformId": pid, "stackId": sid, "definition": definition})
    assert job["status"] == "COMPLETED", job
    late = f"{pid}-{sid}-late"
    assert fake.resources[("worker", late)]["bindings"] == {"KV": f"{pid}-{sid}-kv"}
    assert config_of(fake, late)["keyPrefix"] == "l8/"
    stack = (await client.get(f"{P}/{pid}/stacks/{sid}", headers=h)).json()
    assert stack["status"] == "active" and stack["templateVersion"] is None
    skipped = next(s for s in job["steps"] if s["name"] == "record_stack_version")
    assert skipped["status"] == "skipped"
    # A feature activated into a platform-local stack stays when its definition is activated again.
    tenant = await default_tenant(client, h, pid)
    added = await run_job(client, h, "/provision/feature/activate", {
        "platformId": pid, "entityId": tenant, "featureId": "crm", "featureVersion": "1.2.0", "environment": "prod",
        "stackId": sid})
    assert added["status"] == "COMPLETED", added
    again = await run_job(client, h, "/provision/stack/activate",
                          {"platformId": pid, "stackId": sid, "definition": definition})
    assert again["status"] == "COMPLETED" and again["steps"][0]["output"]["removed"] == []
    assert ("worker", f"{pid}-{sid}-crm") in fake.resources


@pytest.mark.parametrize("extra, status, code", [
    ({"templateId": "no-such-template"}, 404, "TEMPLATE_NOT_FOUND"),
    ({"templateId": "sales-suite", "templateVersion": "9.9.9"}, 404, "VERSION_NOT_FOUND"),
    ({"templateId": "sales-suite", "templateVersion": "1.0.0"}, 409, "VERSION_DEPRECATED"),
    ({"definition": {"resources": {}, "features": [{"id": "nope"}]}}, 400, "INVALID_DEFINITION"),
    ({"definition": {"resources": {}, "features": [{"id": "crm", "version": "^2.0.0"}]}}, 400, "INVALID_DEFINITION"),
    ({"definition": {"resources": {}, "features": [{"id": "crm"}, {"id": "crm"}]}}, 400, "VALIDATION_ERROR"),
    ({"templateId": "Bad Name"}, 400, "VALIDATION_ERROR"),
    ({"stackId": "nosuchstak", "templateId": "sales-suite"}, 404, "STACK_NOT_FOUND"),
    ({"stackId": "default", "templateId": "sales-suite"}, 400, "VALIDATION_ERROR"),
])
async def test_a_bad_activation_is_refused_up_front_and_makes_no_job(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud,
        extra: dict[str, Any], status: int, code: str) -> None:
    h = service_headers
    name = await template(client, h)
    deprecated = await client.post(f"{S}/{name}/versions/1.0.0/deprecate", headers=h)
    assert deprecated.status_code == 200
    pid = await create_platform(client, h)
    sid = await new_stack(client, h, pid)
    resp = await client.post(f"{PROV}/provision/stack/activate", json={"platformId": pid, "stackId": sid, **extra},
                             headers=h)
    assert_error(resp, status, code)
    assert (await client.get(f"{PROV}/provision/jobs", params={"platformId": pid}, headers=h)).json()["data"] == []
    assert fake.calls == []


async def test_a_deprecated_template_and_a_mismatched_one_are_refused(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    name = await template(client, h)
    other = await template(client, h, "other-suite")
    pid = await create_platform(client, h)
    sid = await new_stack(client, h, pid, templateId=name)
    resp = await client.post(f"{PROV}/provision/stack/activate",
                             json={"platformId": pid, "stackId": sid, "templateId": other}, headers=h)
    assert_error(resp, 409, "STACK_TEMPLATE_MISMATCH")
    await client.patch(f"{S}/{name}", json={"status": "deprecated"}, headers=h)
    resp = await client.post(f"{PROV}/provision/stack/activate", json={"platformId": pid, "stackId": sid}, headers=h)
    assert_error(resp, 409, "TEMPLATE_DEPRECATED")


async def test_another_platforms_user_cannot_act_on_its_stacks(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    name = await template(client, h)
    mine, theirs = await create_platform(client, h), await create_platform(client, h)
    my_stack, their_stack = await new_stack(client, h, mine), await new_stack(client, h, theirs)
    admin_id, admin = await sign_up(client)
    await make_admin(client, h, mine, admin_id)
    for path in ("/provision/stack/activate", "/provision/stack/deactivate"):
        resp = await client.post(f"{PROV}{path}", json={"platformId": theirs, "stackId": their_stack,
                                                       "templateId": name}, headers=admin)
        assert_error(resp, 403, "FORBIDDEN")
    assert (await client.get(f"{PROV}/provision/jobs", params={"platformId": theirs}, headers=h)).json()["data"] == []
    # Their own platform's stack they may activate.
    resp = await client.post(f"{PROV}/provision/stack/activate",
                             json={"platformId": mine, "stackId": my_stack, "templateId": name}, headers=admin)
    assert resp.status_code == 202, resp.text
    assert (await wait_job(client, h, resp.json()["jobId"]))["status"] == "COMPLETED"


async def test_deactivation_removes_exactly_what_activation_made(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    name = await template(client, h)
    pid = await create_platform(client, h)
    keep = await new_stack(client, h, pid)  # another stack on the same platform stays as it is
    assert (await run_job(client, h, "/provision/stack/activate", {"platformId": pid, "stackId": keep,
                                                                  "templateId": name}))["status"] == "COMPLETED"
    before = dict(fake.resources)
    sid = await new_stack(client, h, pid)
    assert (await run_job(client, h, "/provision/stack/activate", {"platformId": pid, "stackId": sid,
                                                                  "templateId": name}))["status"] == "COMPLETED"
    made = set(fake.resources) - set(before)
    assert made and all(sid in n for _, n in made)
    # Without deleteData the shared data stays (recorded as active); Workers and DNS go.
    job = await run_job(client, h, "/provision/stack/deactivate", {"platformId": pid, "stackId": sid})
    assert job["status"] == "COMPLETED", job
    left = set(fake.resources) - set(before)
    assert left == {("d1", f"{pid}-{sid}-db"), ("r2", f"{pid}-{sid}-storage"), ("kv", f"{pid}-{sid}-kv")}
    assert sorted(e for w, e in fake.lifecycle if sid in w) == ["activate", "activate", "deactivate", "deactivate"]
    resources = [r for r in await list_data(client, h, f"{P}/{pid}/resources", includeDeleted="true")
                 if r["stackId"] == sid]
    assert {(r["type"], r["status"]) for r in resources} == {
        ("d1", "active"), ("r2", "active"), ("kv", "active"), ("worker", "deleted")}
    assert (await client.get(f"{P}/{pid}/stacks/{sid}", headers=h)).json()["status"] == "deactivated"
    live = [f for f in await list_data(client, h, f"{P}/{pid}/features") if f["stackId"] == sid]
    assert live == []
    # With deleteData, the rest goes; the other stack was never touched.
    job = await run_job(client, h, "/provision/stack/deactivate", {"platformId": pid, "stackId": sid,
                                                                  "deleteData": True})
    assert job["status"] == "COMPLETED", job
    assert fake.resources == before


async def test_a_failing_step_rolls_the_whole_activation_back(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    name = await template(client, h)
    pid = await create_platform(client, h)
    sid = await new_stack(client, h, pid)
    fake.faults.append(Fault("ensure_dns", times=-1, retryable=False))
    job = await run_job(client, h, "/provision/stack/activate", {"platformId": pid, "stackId": sid,
                                                                "templateId": name})
    assert job["status"] == "ROLLED_BACK", job
    assert not [n for _, n in fake.resources if sid in n]
    stack = (await client.get(f"{P}/{pid}/stacks/{sid}", headers=h)).json()
    assert stack["templateVersion"] is None and stack["status"] != "active"
    assert [f for f in await list_data(client, h, f"{P}/{pid}/features") if f["stackId"] == sid] == []


# --- upgrade ------------------------------------------------------------------------------------

async def _active_v1(client: httpx.AsyncClient, h: dict[str, str]) -> tuple[str, str, str]:
    name = await template(client, h)
    pid = await create_platform(client, h)
    sid = await new_stack(client, h, pid, templateId=name)
    job = await run_job(client, h, "/provision/stack/activate",
                        {"platformId": pid, "stackId": sid, "templateVersion": "1.0.0"})
    assert job["status"] == "COMPLETED", job
    return name, pid, sid


async def test_upgrade_adds_removes_and_migrates_members(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    _, pid, sid = await _active_v1(client, h)
    # The host's crm package is newer than the one the stack recorded: the upgrade migrates it.
    tenant = await default_tenant(client, h, pid)
    old = await client.post(f"{P}/{pid}/features", headers=h, json={
        "featureId": "crm", "version": "1.0.0", "environment": "prod", "stackId": sid, "entityId": tenant,
        "status": "active"})
    assert old.status_code in (200, 201), old.text
    fake.lifecycle.clear()
    job = await run_job(client, h, "/provision/stack/upgrade", {"platformId": pid, "stackId": sid})
    assert job["status"] == "COMPLETED", job
    assert job["type"] == "ACTIVATE_STACK" and job["payload"]["templateVersion"] == "1.1.0"
    fetched = job["steps"][0]["output"]
    assert (fetched["added"], fetched["upgraded"], fetched["removed"]) == (["billing"], ["crm"], ["analytics"])
    crm, billing, analytics = (f"{pid}-{sid}-{f}" for f in ("crm", "billing", "analytics"))
    assert sorted(fake.lifecycle) == sorted([(crm, "upgrade"), (billing, "activate"), (analytics, "deactivate")])
    assert ("worker", analytics) not in fake.resources and ("worker", billing) in fake.resources
    assert ("dns", f"analytics.svc.{sid}.{pid}.nno.localhost") not in fake.resources
    assert fake.names("r2") == {f"{pid}-{sid}-storage"}  # 1.1.0 shares an R2 bucket too
    assert [c for c in fake.calls if c[0] in ("snapshot_d1", "drop_d1_snapshot")] == [
        ("snapshot_d1", f"{pid}-{sid}-db"), ("drop_d1_snapshot", f"{pid}-{sid}-db")]
    assert fake.snapshots == {}
    stack = (await client.get(f"{P}/{pid}/stacks/{sid}", headers=h)).json()
    assert (stack["status"], stack["templateVersion"]) == ("active", "1.1.0")
    features = {f["featureId"]: f["version"] for f in await list_data(client, h, f"{P}/{pid}/features")
                if f["stackId"] == sid}
    assert features == {"crm": "1.2.0", "billing": "1.0.0"}
    # Deactivation then removes what the upgrade left, not what 1.0.0 had.
    job = await run_job(client, h, "/provision/stack/deactivate", {"platformId": pid, "stackId": sid,
                                                                  "deleteData": True})
    assert job["status"] == "COMPLETED"
    assert not [n for _, n in fake.resources if sid in n]


async def test_a_failed_upgrade_is_rolled_back_data_included(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    _, pid, sid = await _active_v1(client, h)
    db = f"{pid}-{sid}-db"
    fake.resources[("d1", db)]["data"] = {"rows": 1}
    before = {k: dict(v) for k, v in fake.resources.items()}
    features_before = sorted((f["featureId"], f["version"]) for f in await list_data(client, h, f"{P}/{pid}/features"))
    real_call = fake.call_worker

    async def migrating(name: str, method: str, path: str, **kw: Any) -> Any:
        if path == "/_nno/lifecycle" and kw["json"]["event"] in ("activate", "upgrade"):
            fake.resources[("d1", db)]["data"] = {"rows": 1, "migrated": name}
        return await real_call(name, method, path, **kw)

    fake.call_worker = migrating  # type: ignore[method-assign]
    fake.faults.append(Fault("ensure_dns", name=f"billing.svc.{sid}.{pid}.nno.localhost", times=-1,
                             retryable=False))
    job = await run_job(client, h, "/provision/stack/upgrade", {"platformId": pid, "stackId": sid})
    assert job["status"] == "ROLLED_BACK", job
    assert fake.resources == before  # Workers, bindings, shared resources and the D1's data as they were
    assert ("restore_d1", db) in fake.calls
    stack = (await client.get(f"{P}/{pid}/stacks/{sid}", headers=h)).json()
    assert (stack["status"], stack["templateVersion"]) == ("active", "1.0.0")
    assert sorted((f["featureId"], f["version"]) for f in await list_data(client, h, f"{P}/{pid}/features")) == \
        features_before


async def test_upgrade_refusals(client: httpx.AsyncClient, service_headers: dict[str, str],
                                fake: FakeCloud) -> None:
    h = service_headers
    _, pid, sid = await _active_v1(client, h)
    job = await run_job(client, h, "/provision/stack/upgrade", {"platformId": pid, "stackId": sid})
    assert job["status"] == "COMPLETED"
    for body, status, code in (
        ({"stackId": sid}, 409, "NOT_NEWER"),
        ({"stackId": sid, "templateVersion": "1.0.0"}, 409, "NOT_NEWER"),
        ({"stackId": sid, "templateVersion": "7.0.0"}, 404, "VERSION_NOT_FOUND"),
        ({"stackId": "nosuchstak"}, 404, "STACK_NOT_FOUND"),
        ({"stackId": sid, "templateVersion": "1_0"}, 400, "VALIDATION_ERROR"),
    ):
        assert_error(await client.post(f"{PROV}/provision/stack/upgrade", json={"platformId": pid, **body},
                                       headers=h), status, code)
    local = await new_stack(client, h, pid)
    definition = {"resources": {}, "features": [{"id": "late"}]}
    assert (await run_job(client, h, "/provision/stack/activate", {"platformId": pid, "stackId": local,
                                                                  "definition": definition}))["status"] == "COMPLETED"
    assert_error(await client.post(f"{PROV}/provision/stack/upgrade", json={"platformId": pid, "stackId": local},
                                   headers=h), 409, "STACK_NOT_UPGRADABLE")
    admin_id, admin = await sign_up(client)
    other = await create_platform(client, h)
    await make_admin(client, h, other, admin_id)
    assert_error(await client.post(f"{PROV}/provision/stack/upgrade", json={"platformId": pid, "stackId": sid},
                                   headers=admin), 403, "FORBIDDEN")


# --- onboarding's stackTemplateId ---------------------------------------------------------------

async def test_onboarding_with_a_template_activates_it(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    import asyncio

    h = service_headers
    name = await template(client, h)
    _, user = await sign_up(client)
    resp = await client.post("/api/v1/onboarding", headers=user,
                             json={"platformName": "Templated", "slug": "templated-co", "tier": "starter",
                                   "stackTemplateId": name})
    assert resp.status_code == 201, resp.text
    pid = resp.json()["platformId"]
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        jobs = (await client.get(f"{PROV}/provision/jobs", params={"platformId": pid}, headers=h)).json()["data"]
        stack_jobs = [j for j in jobs if j["type"] == "ACTIVATE_STACK"]
        if stack_jobs:
            break
        assert asyncio.get_running_loop().time() < deadline, jobs
        await asyncio.sleep(0.05)
    job = await wait_job(client, h, stack_jobs[0]["id"])
    assert job["status"] == "COMPLETED", job
    assert [j["type"] for j in jobs if j["type"] == "PROVISION_PLATFORM"] == ["PROVISION_PLATFORM"]
    stacks = [s for s in await list_data(client, h, f"{P}/{pid}/stacks") if not s["isDefault"]]
    assert [(s["name"], s["templateId"], s["templateVersion"], s["status"]) for s in stacks] == [
        (name, name, "1.1.0", "active")]
    assert ("worker", f"{pid}-{stacks[0]['id']}-crm") in fake.resources


async def test_onboarding_refuses_an_unknown_template_before_making_anything(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    _, user = await sign_up(client)
    resp = await client.post("/api/v1/onboarding", headers=user,
                             json={"platformName": "Nope", "slug": "nope-co", "tier": "starter",
                                   "stackTemplateId": "no-such-stack"})
    assert_error(resp, 400, "UNKNOWN_STACK_TEMPLATE")
    platforms = (await client.get(P, headers=service_headers)).json()["data"]
    assert "nope-co" not in [p["slug"] for p in platforms]
    assert fake.calls == []
