"""Stack versions: publish (semver, immutable, validated against the installed features), list, get,
deprecate, and `latest_version` following the greatest active version."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import semantic_version
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.core import Core
from nno.kernel.identity import Identity
from nno.sdk.stack import StackDefinition
from nno.stacks.schemas import VersionPublish
from nno.stacks.service import StackRegistry
from tests.stacks.conftest import S, assert_error, create_template, publish

VERSION_KEYS = {"id", "template_id", "name", "version", "definition", "status", "changelog", "published_by",
                "created_at", "deprecated_at"}


async def _latest(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> str | None:
    body = (await client.get(f"{S}/{name}", headers=headers)).json()
    latest = body["template"]["latest_version"]
    assert (body["latestVersion"] or {}).get("version") == latest
    return latest  # type: ignore[no-any-return]


async def test_publish_stores_the_resolved_definition(client: httpx.AsyncClient, operator: dict[str, str],
                                                      user: dict[str, str]) -> None:
    name = await create_template(client, operator)
    resp = await client.post(f"{S}/{name}/versions", headers=operator, json={
        "version": "1.0.0", "changelog": "first",
        "definition": {"resources": {"d1": True, "kv": True},
                       "features": [{"id": "settings", "bindings": ["kv"]},
                                    {"id": "tasks", "version": "^1.0.0", "tablePrefix": "t_"}]}})
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert set(out) == VERSION_KEYS
    assert out["version"] == "1.0.0" and out["status"] == "active" and out["changelog"] == "first"
    assert out["published_by"].startswith("user:")
    definition = out["definition"]
    assert definition["name"] == name and definition["version"] == "1.0.0"
    settings_, tasks = definition["features"]
    assert settings_ == {"id": "settings", "version": "*", "tablePrefix": "settings_", "keyPrefix": "settings/",
                         "bindings": ["kv"]}
    assert tasks["bindings"] is None
    assert tasks["tablePrefix"] == "t_" and tasks["keyPrefix"] == "tasks/"
    # What was stored is what every reader gets, and it parses as a StackDefinition again.
    got = (await client.get(f"{S}/{name}/versions/1.0.0", headers=user)).json()
    assert got == out
    assert (await client.get(f"{S}/{name}/versions/latest", headers=user)).json() == out
    assert StackDefinition.model_validate(got["definition"]).model_dump(mode="json") == definition


async def test_versions_are_immutable(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    name = await create_template(client, operator)
    first = (await publish(client, operator, name, "1.0.0")).json()
    other = {"resources": {"d1": True}, "features": [{"id": "tasks"}]}
    assert_error(await publish(client, operator, name, "1.0.0", other, expect=409), 409, "VERSION_EXISTS")
    assert (await client.get(f"{S}/{name}/versions/1.0.0", headers=operator)).json() == first
    for method in ("PUT", "PATCH", "DELETE"):
        resp = await client.request(method, f"{S}/{name}/versions/1.0.0", json=other, headers=operator)
        assert_error(resp, 405)
    assert (await client.get(f"{S}/{name}/versions/1.0.0", headers=operator)).json() == first


async def test_latest_version_follows_the_greatest_active_version(
        client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    name = await create_template(client, operator)
    assert await _latest(client, operator, name) is None
    await publish(client, operator, name, "1.0.0")
    assert await _latest(client, operator, name) == "1.0.0"
    await publish(client, operator, name, "1.10.0")
    await publish(client, operator, name, "1.9.0")  # published later, but smaller
    assert await _latest(client, operator, name) == "1.10.0"
    await publish(client, operator, name, "2.0.0-beta.1")
    assert await _latest(client, operator, name) == "2.0.0-beta.1"
    await publish(client, operator, name, "2.0.0")
    assert await _latest(client, operator, name) == "2.0.0"
    listed = (await client.get(f"{S}/{name}/versions", headers=operator)).json()
    assert [v["version"] for v in listed["data"]] == ["2.0.0", "2.0.0-beta.1", "1.10.0", "1.9.0", "1.0.0"]
    assert listed["total"] == 5
    # Deprecating the latest moves it back; deprecated versions stay readable by number.
    dep = await client.post(f"{S}/{name}/versions/2.0.0/deprecate", headers=operator)
    assert dep.status_code == 200 and dep.json()["status"] == "deprecated" and dep.json()["deprecated_at"]
    assert await _latest(client, operator, name) == "2.0.0-beta.1"
    again = await client.post(f"{S}/{name}/versions/2.0.0/deprecate", headers=operator)
    assert again.json() == dep.json()  # idempotent
    assert (await client.get(f"{S}/{name}/versions/2.0.0", headers=operator)).json()["status"] == "deprecated"
    active = (await client.get(f"{S}/{name}/versions", headers=operator)).json()
    assert "2.0.0" not in [v["version"] for v in active["data"]]
    everything = (await client.get(f"{S}/{name}/versions", params={"includeDeprecated": "true"},
                                   headers=operator)).json()
    assert everything["total"] == 5
    for version in ("2.0.0-beta.1", "1.10.0", "1.9.0", "1.0.0"):
        await client.post(f"{S}/{name}/versions/{version}/deprecate", headers=operator)
    assert await _latest(client, operator, name) is None
    assert_error(await client.get(f"{S}/{name}/versions/latest", headers=operator), 404, "NOT_FOUND")
    # A republish of a deprecated number is still refused: versions are immutable.
    assert_error(await publish(client, operator, name, "1.0.0", expect=409), 409, "VERSION_EXISTS")


async def test_unknown_versions_are_404(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    name = await create_template(client, operator)
    assert_error(await client.get(f"{S}/{name}/versions/1.0.0", headers=operator), 404, "NOT_FOUND")
    assert_error(await client.post(f"{S}/{name}/versions/1.0.0/deprecate", headers=operator), 404, "NOT_FOUND")
    assert_error(await publish(client, operator, f"no-{name}", "1.0.0", expect=404), 404, "NOT_FOUND")


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0.0", "latest", "1.0.0+", "x" * 65])
async def test_a_version_must_be_semver(client: httpx.AsyncClient, operator: dict[str, str], version: str) -> None:
    name = await create_template(client, operator)
    assert_error(await publish(client, operator, name, version, expect=400), 400, "VALIDATION_ERROR")
    assert (await client.get(f"{S}/{name}/versions", headers=operator)).json()["total"] == 0


BAD_DEFINITIONS: list[tuple[dict[str, Any], str]] = [
    ({"features": []}, "VALIDATION_ERROR"),
    ({"resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "Tasks"}], "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks", "version": "not a range"}], "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks", "tablePrefix": "tasks"}], "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks", "bindings": ["queue"]}], "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks", "bindings": ["kv"]}], "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "x" * 30}], "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks"}], "resources": {"d1": True, "queue": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks"}, {"id": "tasks"}], "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks", "tablePrefix": "t_"}, {"id": "members", "tablePrefix": "t_m_"}],
      "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks", "keyPrefix": "a/"}, {"id": "members", "keyPrefix": "a/"}],
      "resources": {"d1": True}}, "VALIDATION_ERROR"),
    ({"features": [{"id": "tasks"}], "resources": {"d1": True}, "name": "other"}, "DEFINITION_MISMATCH"),
    ({"features": [{"id": "tasks"}], "resources": {"d1": True}, "version": "9.9.9"}, "DEFINITION_MISMATCH"),
]


@pytest.mark.parametrize("definition, code", BAD_DEFINITIONS)
async def test_a_malformed_definition_is_refused(client: httpx.AsyncClient, operator: dict[str, str],
                                                 definition: dict[str, Any], code: str) -> None:
    name = await create_template(client, operator)
    assert_error(await publish(client, operator, name, "1.0.0", definition, expect=400), 400, code)
    assert (await client.get(f"{S}/{name}/versions", headers=operator)).json()["total"] == 0


@pytest.mark.parametrize("definition, rule", [
    ({"features": [{"id": "unknown-feature"}], "resources": {"d1": True}}, "S04"),
    ({"features": [{"id": "tasks", "version": "^2.0.0"}], "resources": {"d1": True}}, "S05"),
    ({"features": [{"id": "tasks", "version": "~1.0.0"}], "resources": {"d1": True}}, "S05"),
    ({"features": [{"id": "tasks"}], "resources": {"kv": True}}, "S06"),
    ({"features": [{"id": "notes"}], "resources": {"d1": True}}, "S06"),
    ({"features": [{"id": "broken"}], "resources": {}}, "S07"),
])
async def test_a_definition_that_does_not_fit_the_installed_features_is_refused(
        client: httpx.AsyncClient, operator: dict[str, str], definition: dict[str, Any], rule: str) -> None:
    name = await create_template(client, operator)
    err = assert_error(await publish(client, operator, name, "1.0.0", definition, expect=400), 400,
                       "INVALID_DEFINITION")
    problems = err["details"]["problems"]
    assert [p["rule"] for p in problems] == [rule], problems
    assert all(p["severity"] == "error" and p["field"] and p["message"] for p in problems)
    assert (await client.get(f"{S}/{name}/versions", headers=operator)).json()["total"] == 0


async def test_ranges_that_fit_the_installed_versions_are_published(
        client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    name = await create_template(client, operator)
    for index, spec in enumerate(("^1.0.0", "~1.1.0", ">=1.0.0 <2.0.0", "1.x", "*", "1.1.0")):
        await publish(client, operator, name, f"1.0.{index}",
                      {"features": [{"id": "tasks", "version": spec}], "resources": {"d1": True}})


# --- property: latest_version under any sequence of publishes and deprecations -------------------

semvers = st.builds(lambda a, b, c, pre: f"{a}.{b}.{c}" + (f"-{pre}" if pre else ""),
                    st.integers(0, 3), st.integers(0, 12), st.integers(0, 3),
                    st.sampled_from([None, None, "alpha", "beta.1", "rc.2"]))
operations = st.lists(st.tuples(st.sampled_from(["publish", "deprecate"]), semvers), min_size=1, max_size=12)
OPERATOR = Identity(auth_type="session", user_id="op", role="nno-operator")
DEFINITION = StackDefinition.model_validate({"features": [{"id": "tasks"}], "resources": {"d1": True}})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_latest_version_is_always_the_greatest_active_one(core: Core, ops: list[tuple[str, str]]) -> None:
    registry = StackRegistry(core.context("stacks"))
    from nno.stacks.schemas import TemplateCreate

    name = f"prop-{abs(hash(tuple(ops))) % 10**12}"
    try:
        await registry.create_template(OPERATOR, TemplateCreate(name=name, displayName="p", description="p"))
    except Exception:
        return  # the same example again (hypothesis replays): its template exists
    published: dict[str, str] = {}
    for op, version in ops:
        if op == "publish":
            try:
                await registry.publish(OPERATOR, name, VersionPublish(version=version, definition=DEFINITION))
                published[version] = "active"
            except Exception as exc:  # only a duplicate may be refused
                assert version in published, exc
        elif version in published:
            await registry.deprecate_version(OPERATOR, name, version)
            published[version] = "deprecated"
        active = [semantic_version.Version(v) for v, s in published.items() if s == "active"]
        detail = await registry.get_template(OPERATOR, name)
        expected = str(max(active)) if active else None
        assert detail["template"]["latest_version"] == expected
        assert (detail["latestVersion"] or {}).get("version") == expected
