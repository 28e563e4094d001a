"""The first-party `tasks` feature, activated on a provisioned platform and used through its host:
its D1 with migrations applied, its pages gated by permissions, tenant isolation, deactivation with
and without its data."""

from __future__ import annotations

import re
import time

import httpx

from nno.core import Core
from tests.d1sql import d1_tables
from tests.features.conftest import At, activate, browser, deactivate, provisioned_platform, sign_up, use_org


def _cloud(core: Core):  # type: ignore[no-untyped-def]
    return core.context("edge").extras["cloud"]


async def test_tasks_activates_with_its_database_and_serves_its_pages(
        client: httpx.AsyncClient, service_headers: dict[str, str], at: At, core: Core) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    started = time.monotonic()
    done = await activate(client, h, pid, tenant, "tasks")
    elapsed = time.monotonic() - started
    assert done["status"] == "COMPLETED", done
    assert elapsed < 30
    steps = {s["name"]: s for s in done["steps"]}
    assert steps["run_feature_migrations"]["output"]["lifecycle"]["tasks"]["migrations"] == ["0001_projects_tasks.sql"]
    assert steps["register_permissions"]["output"]["featureIds"] == ["tasks"]

    # What the definition declares exists: its D1 (migrated), its Worker with the binding, DNS, Registry rows.
    tables = await d1_tables(_cloud(core), f"{pid}-default-tasks-db")
    assert {"projects", "tasks", "_nno_migrations"} <= tables
    worker = await _cloud(core).get_worker(f"{pid}-default-tasks")
    assert worker is not None and '"DB"' in worker.bindings
    resources = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=h)).json()["data"]
    assert {(r["type"], r["name"]) for r in resources} >= {("d1", f"{pid}-default-tasks-db"),
                                                           ("worker", f"{pid}-default-tasks")}
    feats = (await client.get(f"/api/v1/platforms/{pid}/features", headers=h)).json()["data"]
    assert [(f["featureId"], f["version"], f["status"]) for f in feats] == [("tasks", "1.0.0", "active")]
    # The auth Worker knows its permission keys.
    catalogue = await at(f"auth.svc.default.{pid}.nno.localhost").get(
        "/api/nno/feature-permissions", headers={"Authorization": f"Bearer {await sign_up(at, pid, 'x@ex.com')}"})
    assert [p["key"] for p in catalogue.json()["data"]] == ["tasks:manage", "tasks:read", "tasks:write"]

    host = f"tasks.svc.default.{pid}.nno.localhost"
    # Anonymous: a browser goes to sign in, an API client gets a 401 envelope.
    anon = at(host)
    page = await anon.get("/", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/_nno/sign-in")
    api = await anon.get("/api/projects")
    assert api.status_code == 401 and api.json()["error"]["code"] == "UNAUTHORIZED"
    assert (await anon.get("/_nno/static/htmx.min.js")).text.startswith("var htmx")

    # Ada signs in on the feature's host, makes an organization, and tracks work in it.
    await sign_up(at, pid, "ada@example.com")
    ada = await browser(at, host, "ada@example.com")
    first = await ada.get("/", headers={"accept": "text/html"})
    assert first.status_code == 303 and first.headers["location"].startswith("/_nno/organization")
    await use_org(ada, "Ada's team")
    page = await ada.get("/")
    assert page.status_code == 200 and "No projects yet" in page.text and "htmx.min.js" in page.text
    made = await ada.post("/projects", data={"name": "Launch <v2>"}, headers={"hx-request": "true"})
    assert made.status_code == 200 and "Launch &lt;v2&gt;" in made.text and "<html" not in made.text
    project_id = re.search(r'href="/projects/([a-f0-9]+)"', made.text).group(1)  # type: ignore[union-attr]
    task = await ada.post(f"/projects/{project_id}/tasks", data={"title": "Write docs", "assignee": ""},
                          headers={"hx-request": "true"})
    assert task.status_code == 200 and "Write docs" in task.text
    task_id = re.search(r'id="task-([a-f0-9]+)"', task.text).group(1)  # type: ignore[union-attr]
    moved = await ada.post(f"/tasks/{task_id}/status", data={"status": "done"}, headers={"hx-request": "true"})
    assert moved.status_code == 200 and 'data-status="done"' in moved.text
    bad = await ada.post(f"/tasks/{task_id}/status", data={"status": "later"}, headers={"hx-request": "true"})
    assert bad.status_code == 400
    listed = (await ada.get("/api/projects")).json()["data"]
    assert [(p["name"], p["total"], p["done"]) for p in listed] == [("Launch <v2>", 1, 1)]

    # Bob, in his own organization on the same platform, sees none of it.
    await sign_up(at, pid, "bob@example.com")
    bob = await browser(at, host, "bob@example.com")
    await use_org(bob, "Bob's shop")
    assert (await bob.get("/api/projects")).json()["data"] == []
    assert (await bob.get(f"/projects/{project_id}")).status_code == 404
    assert (await bob.post(f"/tasks/{task_id}/status", data={"status": "todo"})).status_code == 404

    # A session of another platform means nothing here.
    other, _ = await provisioned_platform(client, h)
    eve_token = await sign_up(at, other, "eve@example.com")
    stranger = await at(host).get("/api/projects", headers={"Authorization": f"Bearer {eve_token}"})
    assert stranger.status_code == 401


async def test_members_without_the_manage_permission_cannot_delete(
        client: httpx.AsyncClient, service_headers: dict[str, str], at: At, core: Core) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    assert (await activate(client, h, pid, tenant, "tasks"))["status"] == "COMPLETED"
    host = f"tasks.svc.default.{pid}.nno.localhost"
    await sign_up(at, pid, "owner@example.com")
    member_token = await sign_up(at, pid, "member@example.com")
    owner = await browser(at, host, "owner@example.com")
    await use_org(owner, "Shared")
    await owner.post("/projects", data={"name": "P"})
    project_id = (await owner.get("/api/projects")).json()["data"][0]["id"]

    # The owner adds the member to the organization (the auth Worker's own API), as a plain member.
    auth = at(f"auth.svc.default.{pid}.nno.localhost")
    me = (await auth.get("/api/nno/session", headers={"Authorization": f"Bearer {member_token}"})).json()
    owner_token = owner.cookies["nno_session"]
    added = await auth.post("/api/auth/organization/add-member", json={"userId": me["userId"], "role": "member"},
                            headers={"Authorization": f"Bearer {owner_token}"})
    assert added.status_code == 201, added.text
    member = await browser(at, host, "member@example.com")
    org_id = (await auth.get("/api/nno/session", headers={"Authorization": f"Bearer {owner_token}"})).json()[
        "activeOrganizationId"]
    assert (await member.post("/_nno/organization", data={"organizationId": org_id})).status_code == 303

    # Required permissions come by default: the member reads and writes...
    assert [p["id"] for p in (await member.get("/api/projects")).json()["data"]] == [project_id]
    assert (await member.post(f"/projects/{project_id}/tasks", data={"title": "t"})).status_code == 303
    # ...but deleting needs tasks:manage, which only the organization's owners and admins hold.
    denied = await member.post(f"/projects/{project_id}/delete", headers={"accept": "application/json"})
    assert denied.status_code == 403 and "tasks:manage" in denied.json()["error"]["message"]
    assert (await owner.post(f"/projects/{project_id}/delete")).status_code == 303
    assert (await owner.get("/api/projects")).json()["data"] == []


async def test_deactivation_keeps_data_unless_asked_and_reactivation_finds_it(
        client: httpx.AsyncClient, service_headers: dict[str, str], at: At, core: Core) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    assert (await activate(client, h, pid, tenant, "tasks"))["status"] == "COMPLETED"
    host = f"tasks.svc.default.{pid}.nno.localhost"
    await sign_up(at, pid, "ada@example.com")
    ada = await browser(at, host, "ada@example.com")
    await use_org(ada, "Team")
    await ada.post("/projects", data={"name": "Kept"})

    done = await deactivate(client, h, pid, tenant, "tasks")
    assert done["status"] == "COMPLETED", done
    assert (await at(host).get("/_nno/health")).status_code == 404
    assert await _cloud(core).get_worker(f"{pid}-default-tasks") is None
    d1 = f"{pid}-default-tasks-db"
    assert await _cloud(core).d1_exists(d1)  # deleteData false: the data stays
    catalogue = await at(f"auth.svc.default.{pid}.nno.localhost").get(
        "/api/nno/feature-permissions", headers={"Authorization": f"Bearer {ada.cookies['nno_session']}"})
    assert catalogue.json()["data"] == []

    again = await activate(client, h, pid, tenant, "tasks")
    assert again["status"] == "COMPLETED", again
    steps = {s["name"]: s for s in again["steps"]}
    assert steps["run_feature_migrations"]["output"]["lifecycle"]["tasks"]["migrations"] == []
    assert [p["name"] for p in (await ada.get("/api/projects")).json()["data"]] == ["Kept"]

    gone = await deactivate(client, h, pid, tenant, "tasks", deleteData=True)
    assert gone["status"] == "COMPLETED", gone
    assert not await _cloud(core).d1_exists(d1)
    resources = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=h)).json()["data"]
    assert [r for r in resources if r["name"].startswith(f"{pid}-default-tasks") and r["status"] != "deleted"] == []
