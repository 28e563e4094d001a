"""The HTTP surface through the gateway: input envelopes, authorization, feature and stack jobs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.core import Core
from tests.provisioning.conftest import PROV, create_platform, wait_job
from tests.provisioning.fakes import FakeCloud

IAM = "/api/v1/iam"


async def job_count(core: Core) -> int:
    from sqlalchemy import func, select

    from nno.provisioning.models import ProvisionJob

    async with core.context("provisioning").db.session() as s:
        return int((await s.execute(select(func.count()).select_from(ProvisionJob))).scalar_one())


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code and err["requestId"], err
    return dict(err)


BAD_BODIES = [
    ("/provision/platform", {}, "platformId"),
    ("/provision/platform", {"platformId": "NOT-AN-ID"}, "platformId"),
    ("/provision/platform", {"platformId": "abcde12345", "environment": "qa"}, "environment"),
    ("/provision/platform", {"platformId": "abcde12345", "surprise": 1}, "surprise"),
    ("/provision/platform", {"platformId": "abcde12345", "billingEmail": "not-an-email"}, "billingEmail"),
    ("/provision/feature/activate", {"platformId": "abcde12345", "entityId": "t1", "featureId": "crm",
                                     "featureVersion": "1.0.0"}, "environment"),
    ("/provision/feature/activate", {"platformId": "abcde12345", "entityId": "t1", "featureId": "Bad_Name",
                                     "featureVersion": "1.0.0", "environment": "prod"}, "featureId"),
    ("/provision/feature/deactivate", {"platformId": "abcde12345", "entityId": "t1", "featureId": "crm",
                                       "environment": "prod", "deleteData": "maybe"}, "deleteData"),
    ("/provision/stack/activate", {"platformId": "abcde12345", "stackId": "default"}, "stackId"),
    ("/provision/stack/deactivate", {"platformId": "abcde12345"}, "stackId"),
]


async def test_bad_input_gets_a_precise_envelope_and_changes_nothing(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    for path, body, field in BAD_BODIES:  # one core for all: a fresh database per case is slow when scaled
        err = assert_error(await client.post(PROV + path, json=body, headers=service_headers), 400,
                           "VALIDATION_ERROR")
        assert any(d["field"].startswith(field) for d in err["details"]), (path, body, err)
    assert await job_count(core) == 0


async def test_bad_queries_and_unknown_jobs(core: Core, client: httpx.AsyncClient,
                                           service_headers: dict[str, str]) -> None:
    h = service_headers
    assert_error(await client.post(f"{PROV}/provision/platform", content=b"{not json",
                                   headers={**h, "content-type": "application/json"}), 400, "VALIDATION_ERROR")
    assert_error(await client.get(f"{PROV}/provision/jobs", params={"status": "DONE"}, headers=h), 400,
                 "VALIDATION_ERROR")
    assert_error(await client.get(f"{PROV}/provision/jobs", params={"type": "NUKE"}, headers=h), 400,
                 "VALIDATION_ERROR")
    assert_error(await client.get(f"{PROV}/provision/jobs", params={"limit": 0}, headers=h), 400,
                 "VALIDATION_ERROR")
    assert_error(await client.get(f"{PROV}/provision/jobs", params={"cursor": "%%%"}, headers=h), 400,
                 "INVALID_CURSOR")
    assert_error(await client.get(f"{PROV}/provision/jobs/nosuchjob1", headers=h), 404, "NOT_FOUND")
    assert_error(await client.post(f"{PROV}/provision/jobs/nosuchjob1/retry", headers=h), 404, "NOT_FOUND")
    assert_error(await client.post(f"{PROV}/provision/feature/activate", headers=h, json={
        "platformId": "zzzzzzzzzz", "entityId": "t1", "featureId": "crm", "featureVersion": "1.0.0",
        "environment": "prod"}), 404, "PLATFORM_NOT_FOUND")
    assert await job_count(core) == 0


async def test_list_is_cursor_paginated(client: httpx.AsyncClient, service_headers: dict[str, str],
                                        fake: FakeCloud) -> None:
    pids = [await create_platform(client, service_headers) for _ in range(3)]
    for pid in pids:
        r = await client.post(f"{PROV}/provision/platform", json={"platformId": pid}, headers=service_headers)
        assert r.status_code == 202
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{PROV}/provision/jobs", params=params, headers=service_headers)).json()
        assert page["pagination"]["total"] == 3
        seen += [j["platformId"] for j in page["data"]]
        cursor = page["pagination"]["nextCursor"]
        if not page["pagination"]["hasMore"]:
            break
    assert sorted(seen) == sorted(pids)
    one = (await client.get(f"{PROV}/provision/jobs", params={"platformId": pids[0], "type": "BOOTSTRAP_PLATFORM"},
                            headers=service_headers)).json()
    assert [j["platformId"] for j in one["data"]] == [pids[0]]


async def sign_up(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    resp = await client.post(f"{IAM}/api/auth/sign-up/email",
                             json={"email": email, "password": "correct-horse-9", "name": "U"})
    assert resp.status_code == 200, resp.text
    client.cookies.clear()
    return resp.json()["user"]["id"], {"Authorization": f"Bearer {resp.json()['token']}"}


async def make_admin(client: httpx.AsyncClient, service_headers: dict[str, str], pid: str, user_id: str) -> None:
    resp = await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers,
                             json={"platformId": pid, "userId": user_id, "role": "platform-admin"})
    assert resp.status_code in (200, 201), resp.text


async def default_tenant(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> str:
    page = (await client.get(f"/api/v1/platforms/{pid}/tenants", headers=headers)).json()
    return str(page["data"][0]["id"])


def feature_body(pid: str, tenant: str, **extra: Any) -> dict[str, Any]:
    return {"platformId": pid, "entityId": tenant, "featureId": "crm", "featureVersion": "1.2.0",
            "environment": "prod", **extra}


async def test_authorization(core: Core, client: httpx.AsyncClient, service_headers: dict[str, str],
                             fake: FakeCloud) -> None:
    mine = await create_platform(client, service_headers)
    other = await create_platform(client, service_headers)
    tenant = await default_tenant(client, service_headers, mine)
    other_tenant = await default_tenant(client, service_headers, other)
    job = (await client.post(f"{PROV}/provision/platform", json={"platformId": other},
                             headers=service_headers)).json()["jobId"]

    # Nobody: 401.
    assert_error(await client.post(f"{PROV}/provision/platform", json={"platformId": mine}), 401, "UNAUTHORIZED")
    assert_error(await client.get(f"{PROV}/provision/jobs/{job}"), 401, "UNAUTHORIZED")

    user_id, user = await sign_up(client)
    # A signed-in user with no platform: no provisioning at all.
    assert_error(await client.post(f"{PROV}/provision/platform", json={"platformId": mine}, headers=user), 403,
                 "FORBIDDEN")
    assert_error(await client.post(f"{PROV}/provision/feature/activate", json=feature_body(mine, tenant),
                                   headers=user), 403, "FORBIDDEN")
    assert_error(await client.get(f"{PROV}/provision/jobs/{job}", headers=user), 404, "NOT_FOUND")
    assert_error(await client.get(f"{PROV}/provision/jobs", headers=user), 403, "FORBIDDEN")

    admin_id, admin = await sign_up(client)
    await make_admin(client, service_headers, mine, admin_id)
    # The platform's admin manages its features, not another platform's, and never bootstraps.
    resp = await client.post(f"{PROV}/provision/feature/activate", json=feature_body(mine, tenant), headers=admin)
    assert resp.status_code == 202, resp.text
    own_job = resp.json()["jobId"]
    assert_error(await client.post(f"{PROV}/provision/feature/activate", json=feature_body(other, other_tenant),
                                   headers=admin), 403, "FORBIDDEN")
    assert_error(await client.post(f"{PROV}/provision/platform", json={"platformId": mine}, headers=admin), 403,
                 "FORBIDDEN")
    assert (await client.get(f"{PROV}/provision/jobs/{own_job}", headers=admin)).status_code == 200
    assert_error(await client.get(f"{PROV}/provision/jobs/{job}", headers=admin), 404, "NOT_FOUND")
    listed = (await client.get(f"{PROV}/provision/jobs", params={"platformId": mine}, headers=admin)).json()
    assert [j["id"] for j in listed["data"]] == [own_job]
    assert_error(await client.get(f"{PROV}/provision/jobs", params={"platformId": other}, headers=admin), 403,
                 "FORBIDDEN")
    assert_error(await client.post(f"{PROV}/provision/jobs/{own_job}/retry", headers=admin), 403, "FORBIDDEN")
    assert_error(await client.get(f"{PROV}/provision/dead-letters", headers=admin), 403, "FORBIDDEN")
    finished = await wait_job(client, admin, own_job)
    assert finished["requestedBy"] == f"user:{admin_id}"
    assert user_id != admin_id


async def test_feature_activation_and_deactivation(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                   fake: FakeCloud) -> None:
    h = service_headers
    pid = await create_platform(client, h)
    tenant = await default_tenant(client, h, pid)
    resp = await client.post(f"{PROV}/provision/feature/activate", json=feature_body(pid, tenant), headers=h)
    job = await wait_job(client, h, resp.json()["jobId"])
    assert job["status"] == "COMPLETED", job
    assert [s["name"] for s in job["steps"]] == ["create_feature_resources", "deploy_feature_workers",
                                                "run_feature_migrations", "register_dns", "register_permissions",
                                                "register_resources", "record_activation", "trigger_shell_rebuild"]
    assert fake.lifecycle == [(f"{pid}-default-crm", "activate")]
    worker, host = f"{pid}-default-crm", f"crm.svc.default.{pid}.nno.localhost"
    assert fake.resources[("worker", worker)]["kind"] == "crm"
    assert fake.resources[("dns", host)]["target"] == worker
    feats = (await client.get(f"/api/v1/platforms/{pid}/features", headers=h)).json()["data"]
    assert [(f["featureId"], f["version"], f["status"], f["entityId"]) for f in feats] == [
        ("crm", "1.2.0", "active", tenant)]

    body = {k: v for k, v in feature_body(pid, tenant).items() if k != "featureVersion"}
    resp = await client.post(f"{PROV}/provision/feature/deactivate", json=body, headers=h)
    job = await wait_job(client, h, resp.json()["jobId"])
    assert job["status"] == "COMPLETED", job
    assert ("worker", worker) not in fake.resources and ("dns", host) not in fake.resources
    feats = (await client.get(f"/api/v1/platforms/{pid}/features", headers=h)).json()["data"]
    assert feats == []
    res = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=h)).json()["data"]
    assert [r for r in res if r["name"] == worker and r["status"] != "deleted"] == []
    dns = (await client.get(f"/api/v1/platforms/{pid}/dns-records", headers=h)).json()["data"]
    assert [(d["hostname"], d["status"]) for d in dns] == [(host, "deleted")]


async def test_stack_activation_shares_resources_and_deactivation_removes_them(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    pid = await create_platform(client, h)
    tenant = await default_tenant(client, h, pid)
    stack = await client.post(f"/api/v1/platforms/{pid}/stacks", json={"tenantId": tenant, "name": "saas"},
                              headers=h)
    assert stack.status_code == 201, stack.text
    sid = stack.json()["id"]
    body = {"platformId": pid, "stackId": sid, "entityId": tenant, "resources": {"d1": True, "kv": True},
            "features": [{"featureId": "billing", "version": "1.0.0"}, {"featureId": "crm", "version": "1.2.0"}]}
    job = await wait_job(client, h, (await client.post(f"{PROV}/provision/stack/activate", json=body,
                                                       headers=h)).json()["jobId"])
    assert job["status"] == "COMPLETED", job
    shared = {"DB": f"{pid}-{sid}-db", "KV": f"{pid}-{sid}-kv"}
    assert fake.names("d1") == {shared["DB"]} and fake.names("kv") == {shared["KV"]}
    assert fake.names("r2") == set()  # not declared, not created (lazy model)
    for feature in ("billing", "crm"):
        assert fake.resources[("worker", f"{pid}-{sid}-{feature}")]["bindings"] == shared
        assert ("dns", f"{feature}.svc.{sid}.{pid}.nno.localhost") in fake.resources
    res = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=h)).json()["data"]
    assert len([r for r in res if r["stackId"] == sid]) == 4
    assert (await client.get(f"/api/v1/platforms/{pid}/stacks/{sid}", headers=h)).json()["status"] == "active"

    job = await wait_job(client, h, (await client.post(f"{PROV}/provision/stack/deactivate",
                                                       json={**body, "deleteData": True},
                                                       headers=h)).json()["jobId"])
    assert job["status"] == "COMPLETED", job
    assert not [n for n in fake.names() if sid in n]
    res = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=h)).json()["data"]
    assert all(r["status"] == "deleted" for r in res if r["stackId"] == sid)
    assert (await client.get(f"/api/v1/platforms/{pid}/stacks/{sid}", headers=h)).json()["status"] == "deactivated"


def _maybe(valid: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(valid), st.text(max_size=12), st.integers(), st.none())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_activation_body_is_accepted_or_refused_cleanly(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        data: st.DataObject) -> None:
    pid = "zz" + "0" * 8  # a well-formed id the Registry does not know
    body = data.draw(st.fixed_dictionaries({}, optional={
        "platformId": _maybe(pid), "entityId": _maybe("tenant-1"), "featureId": _maybe("crm"),
        "featureVersion": _maybe("1.0.0"), "environment": st.sampled_from(["prod", "stg", "dev", "qa", 1]),
        "stackId": _maybe("default"), "deleteData": st.sampled_from([True, False, "yes"]),
        "extra": st.integers()}))
    before = await job_count(manual_core)
    resp = await manual_client.post(f"{PROV}/provision/feature/activate", json=body, headers=service_headers)
    assert resp.status_code in (400, 404), resp.text  # never 5xx; unknown platform or bad field
    assert resp.json()["error"]["code"] in ("VALIDATION_ERROR", "PLATFORM_NOT_FOUND")
    assert await job_count(manual_core) == before


async def test_local_installation_emails_are_accepted_as_billing_contacts(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    """IAM lets admin@nno.localhost sign up on a local install; onboarding passes that address on as
    the billing email, so Provisioning must accept it too (same validator)."""
    pid = await create_platform(client, service_headers)
    r = await client.post(f"{PROV}/provision/platform", json={"platformId": pid, "billingEmail": "Op@NNO.localhost"},
                          headers=service_headers)
    assert r.status_code == 202, r.text
    job = await wait_job(client, service_headers, r.json()["jobId"])
    assert job["status"] == "COMPLETED"
