"""Stack Registry templates through the gateway: the documented list/create/get/patch, the seeded
catalogue, and who may do what."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from nno.stacks.catalogue import BUILTIN
from tests.stacks.conftest import S, assert_error, create_template, publish, sign_up

TEMPLATE_KEYS = {"id", "name", "display_name", "description", "icon", "domain", "latest_version", "status",
                 "created_at", "updated_at"}


async def test_the_built_in_catalogue_is_there_on_first_start(client: httpx.AsyncClient,
                                                              user: dict[str, str]) -> None:
    resp = await client.get(S, headers=user)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"data", "total"}
    assert body["total"] == len(BUILTIN) == len(body["data"])
    by_name = {t["name"]: t for t in body["data"]}
    starter = by_name["saas-starter"]
    assert set(starter) == TEMPLATE_KEYS
    assert starter["latest_version"] == "1.0.0" and starter["status"] == "active"
    assert starter["display_name"] == "SaaS Starter Stack" and starter["domain"] == "saas"
    assert isinstance(starter["created_at"], int) and len(starter["id"]) == 10
    detail = (await client.get(f"{S}/saas-starter", headers=user)).json()
    assert set(detail) == {"template", "latestVersion"}
    assert detail["template"] == starter
    definition = detail["latestVersion"]["definition"]
    assert definition["name"] == "saas-starter" and definition["version"] == "1.0.0"
    assert [f["id"] for f in definition["features"]] == ["settings", "members", "tasks"]
    assert {f["tablePrefix"] for f in definition["features"]} == {"settings_", "members_", "tasks_"}
    assert definition["resources"] == {"d1": True, "r2": False, "kv": False}
    assert detail["latestVersion"]["published_by"] == "nno"


async def test_seeding_again_changes_nothing_and_keeps_operator_edits(
        settings: Settings, service_headers: dict[str, str]) -> None:
    async def started() -> Core:
        core = Core(settings, services=["iam", "stacks"], with_edge=False)
        await core.start()
        return core

    core = await started()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url="http://t") as c:
        patched = await c.patch(f"{S}/team-workspace", json={"description": "Edited", "status": "deprecated"},
                                headers=service_headers)
        assert patched.status_code == 200, patched.text
        before = (await c.get(S, params={"includeDeprecated": "true"}, headers=service_headers)).json()
    await core.stop()
    core = await started()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url="http://t") as c:
            after = (await c.get(S, params={"includeDeprecated": "true"}, headers=service_headers)).json()
            versions = (await c.get(f"{S}/saas-starter/versions", headers=service_headers)).json()
    finally:
        await core.stop()
    assert after == before
    assert {t["name"]: t["description"] for t in after["data"]}["team-workspace"] == "Edited"
    assert versions["total"] == 1


async def test_several_processes_seeding_at_once_make_one_catalogue(
        settings: Settings, service_headers: dict[str, str]) -> None:
    cores = [Core(settings, services=["stacks"], with_gateway=False, with_edge=False) for _ in range(3)]
    await asyncio.gather(*(c.start() for c in cores))
    try:
        registry = cores[0].context("stacks")
        from sqlalchemy import func, select

        from nno.stacks.models import StackTemplate, StackVersion

        async with registry.db.session() as s:
            templates = await s.scalar(select(func.count()).select_from(StackTemplate))
            versions = await s.scalar(select(func.count()).select_from(StackVersion))
    finally:
        for c in cores:
            await c.stop()
    assert templates == len(BUILTIN)
    assert versions == sum(len(t.versions) for t in BUILTIN)


async def test_operators_create_templates_with_the_documented_constraints(
        client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    resp = await client.post(S, json={"name": "analytics-pro", "displayName": "Analytics Pro",
                                      "description": "Dashboards", "icon": "bar-chart-2", "domain": "analytics"},
                             headers=operator)
    assert resp.status_code == 201, resp.text
    assert set(resp.json()) == {"id"} and len(resp.json()["id"]) == 10
    detail = (await client.get(f"{S}/analytics-pro", headers=operator)).json()
    assert detail["latestVersion"] is None
    assert detail["template"]["id"] == resp.json()["id"]
    assert detail["template"]["latest_version"] is None and detail["template"]["icon"] == "bar-chart-2"
    again = await client.post(S, json={"name": "analytics-pro", "displayName": "Again", "description": "x"},
                              headers=operator)
    assert_error(again, 409, "TEMPLATE_EXISTS")
    assert (await client.get(f"{S}/analytics-pro", headers=operator)).json()["template"]["display_name"] == \
        "Analytics Pro"


@pytest.mark.parametrize("body, field", [
    ({"name": "Has-Caps", "displayName": "x", "description": "x"}, "name"),
    ({"name": "a_b", "displayName": "x", "description": "x"}, "name"),
    ({"name": "", "displayName": "x", "description": "x"}, "name"),
    ({"name": "a" * 65, "displayName": "x", "description": "x"}, "name"),
    ({"name": "ok", "displayName": "", "description": "x"}, "displayName"),
    ({"name": "ok", "displayName": "x" * 129, "description": "x"}, "displayName"),
    ({"name": "ok", "displayName": "x", "description": ""}, "description"),
    ({"name": "ok", "displayName": "x", "description": "x" * 1025}, "description"),
    ({"name": "ok", "displayName": "x"}, "description"),
    ({"name": "ok", "displayName": "x", "description": "x", "extra": 1}, "extra"),
    ({"name": "ok", "displayName": "x\x00", "description": "x"}, "displayName"),
])
async def test_a_bad_template_is_a_400_and_creates_nothing(client: httpx.AsyncClient, operator: dict[str, str],
                                                           body: dict[str, object], field: str) -> None:
    err = assert_error(await client.post(S, json=body, headers=operator), 400, "VALIDATION_ERROR")
    assert any(d["field"] == field for d in err["details"]), err
    listed = (await client.get(S, params={"includeDeprecated": "true"}, headers=operator)).json()
    assert listed["total"] == len(BUILTIN)


async def test_the_longest_allowed_values_are_accepted(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    name = "a" * 64
    await create_template(client, operator, name, displayName="d" * 128, description="e" * 1024)
    template = (await client.get(f"{S}/{name}", headers=operator)).json()["template"]
    assert len(template["display_name"]) == 128 and len(template["description"]) == 1024


async def test_default_is_reserved(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    resp = await client.post(S, json={"name": "default", "displayName": "x", "description": "x"}, headers=operator)
    assert_error(resp, 400, "RESERVED_NAME")


async def test_only_operators_change_the_catalogue(client: httpx.AsyncClient, operator: dict[str, str],
                                                   user: dict[str, str]) -> None:
    # Anyone signed in browses.
    assert (await client.get(S, headers=user)).status_code == 200
    assert (await client.get(f"{S}/saas-starter", headers=user)).status_code == 200
    assert (await client.get(f"{S}/saas-starter/versions", headers=user)).status_code == 200
    assert (await client.get(f"{S}/saas-starter/versions/1.0.0", headers=user)).status_code == 200
    # Nobody else writes, and a refused write changes nothing.
    before = (await client.get(S, headers=operator)).json()
    assert_error(await client.post(S, json={"name": "mine", "displayName": "x", "description": "x"}, headers=user),
                 403, "FORBIDDEN")
    assert_error(await client.patch(f"{S}/saas-starter", json={"description": "pwned"}, headers=user), 403)
    assert_error(await client.post(f"{S}/saas-starter/versions", headers=user, json={
        "version": "9.0.0", "definition": {"features": [{"id": "settings"}], "resources": {"kv": True}}}), 403)
    assert_error(await client.post(f"{S}/saas-starter/versions/1.0.0/deprecate", headers=user), 403)
    assert (await client.get(S, headers=operator)).json() == before
    versions = (await client.get(f"{S}/saas-starter/versions", params={"includeDeprecated": "true"},
                                 headers=operator)).json()
    assert [v["version"] for v in versions["data"]] == ["1.0.0"] and versions["data"][0]["status"] == "active"


async def test_anonymous_callers_see_nothing(client: httpx.AsyncClient) -> None:
    for method, path in (("GET", S), ("GET", f"{S}/saas-starter"), ("GET", f"{S}/saas-starter/versions"),
                         ("GET", f"{S}/saas-starter/versions/latest"), ("POST", S)):
        assert_error(await client.request(method, path, json={}), 401)


async def test_patch_updates_and_deprecation_hides_a_template_from_the_list(
        client: httpx.AsyncClient, operator: dict[str, str], user: dict[str, str]) -> None:
    name = await create_template(client, operator)
    created = (await client.get(f"{S}/{name}", headers=operator)).json()["template"]
    resp = await client.patch(f"{S}/{name}", json={"displayName": "Renamed", "icon": "box"}, headers=operator)
    assert resp.status_code == 200, resp.text
    patched = resp.json()
    assert set(patched) == TEMPLATE_KEYS
    assert patched["display_name"] == "Renamed" and patched["icon"] == "box"
    assert patched["description"] == created["description"] and patched["updated_at"] >= created["updated_at"]
    assert_error(await client.patch(f"{S}/{name}", json={"displayName": None}, headers=operator), 400)
    assert_error(await client.patch(f"{S}/{name}", json={"status": "retired"}, headers=operator), 400)
    assert_error(await client.patch(f"{S}/{name}", json={"name": "other"}, headers=operator), 400)
    assert_error(await client.patch(f"{S}/nope-{name}", json={"icon": "x"}, headers=operator), 404, "NOT_FOUND")
    resp = await client.patch(f"{S}/{name}", json={"status": "deprecated"}, headers=operator)
    assert resp.json()["status"] == "deprecated"
    listed = (await client.get(S, headers=user)).json()
    assert name not in [t["name"] for t in listed["data"]] and listed["total"] == len(BUILTIN)
    everything = (await client.get(S, params={"includeDeprecated": "true"}, headers=user)).json()
    assert name in [t["name"] for t in everything["data"]]
    # A deprecated template takes no new versions until an operator makes it active again.
    assert_error(await publish(client, operator, name, "1.0.0", expect=409), 409, "TEMPLATE_DEPRECATED")
    await client.patch(f"{S}/{name}", json={"status": "active"}, headers=operator)
    await publish(client, operator, name, "1.0.0")


async def test_list_filters_and_pages(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    await create_template(client, operator, "zz-analytics", domain="analytics")
    only = (await client.get(S, params={"domain": "analytics"}, headers=operator)).json()
    assert [t["name"] for t in only["data"]] == ["zz-analytics"] and only["total"] == 1
    first = (await client.get(S, params={"limit": 1}, headers=operator)).json()
    second = (await client.get(S, params={"limit": 1, "offset": 1}, headers=operator)).json()
    assert first["total"] == second["total"] == len(BUILTIN) + 1
    assert first["data"][0]["name"] < second["data"][0]["name"]
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}):
        assert_error(await client.get(S, params=bad, headers=operator), 400, "VALIDATION_ERROR")


async def test_unknown_template_is_a_404(client: httpx.AsyncClient) -> None:
    user = await sign_up(client)
    assert_error(await client.get(f"{S}/no-such-stack", headers=user), 404, "NOT_FOUND")
    assert_error(await client.get(f"{S}/no-such-stack/versions", headers=user), 404, "NOT_FOUND")
    assert_error(await client.get(f"{S}/Bad_Name", headers=user), 400, "VALIDATION_ERROR")
