"""Features activated into a stack share its D1 under their own table prefixes (and its KV under
their key prefixes) instead of getting resources of their own."""

from __future__ import annotations

import httpx

from nno.core import Core
from tests.d1sql import d1_rows, d1_tables
from tests.features.conftest import At, activate, browser, deactivate, job, provisioned_platform, sign_up, use_org


async def test_two_features_share_a_stacks_d1(client: httpx.AsyncClient, service_headers: dict[str, str], at: At,
                                              core: Core) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    stack = await client.post(f"/api/v1/platforms/{pid}/stacks", json={"tenantId": tenant, "name": "work"},
                              headers=h)
    assert stack.status_code == 201, stack.text
    sid = stack.json()["id"]
    made = await job(client, h, "/stack/activate", {"platformId": pid, "stackId": sid, "entityId": tenant,
                                                    "resources": {"d1": True}, "features": []})
    assert made["status"] == "COMPLETED", made
    for feature in ("tasks", "settings"):
        done = await activate(client, h, pid, tenant, feature, stackId=sid)
        assert done["status"] == "COMPLETED", done
        assert next(s for s in done["steps"] if s["name"] == "create_feature_resources")["output"]["resources"] == []

    cloud = core.context("edge").extras["cloud"]
    assert not await cloud.d1_exists(f"{pid}-{sid}-tasks-db")
    tables = await d1_tables(cloud, f"{pid}-{sid}-db")
    applied = sorted(await d1_rows(cloud, f"{pid}-{sid}-db", "SELECT feature, name FROM _nno_migrations"))
    assert {"tasks_projects", "tasks_tasks", "settings_settings"} <= tables
    assert applied == [("settings", "0001_settings.sql"), ("tasks", "0001_projects_tasks.sql")]

    host = f"tasks.svc.{sid}.{pid}.nno.localhost"
    await sign_up(at, pid, "ada@example.com")
    ada = await browser(at, host, "ada@example.com")
    await use_org(ada, "Team")
    assert (await ada.post("/projects", data={"name": "In the stack"})).status_code == 303
    assert [p["name"] for p in (await ada.get("/api/projects")).json()["data"]] == ["In the stack"]
    assert await d1_rows(cloud, f"{pid}-{sid}-db", "SELECT name FROM tasks_projects") == [("In the stack",)]

    # Deleting tasks' data drops its tables only: settings keeps its own, the shared D1 stays, and
    # tasks can be activated again from scratch.
    gone = await deactivate(client, h, pid, tenant, "tasks", stackId=sid, deleteData=True)
    assert gone["status"] == "COMPLETED", gone
    tables = await d1_tables(cloud, f"{pid}-{sid}-db")
    applied = await d1_rows(cloud, f"{pid}-{sid}-db", "SELECT feature FROM _nno_migrations")
    assert "settings_settings" in tables and not {t for t in tables if t.startswith("tasks_")}
    assert applied == [("settings",)]
    again = await activate(client, h, pid, tenant, "tasks", stackId=sid)
    assert again["status"] == "COMPLETED", again
    assert (await ada.get("/api/projects")).json()["data"] == []
