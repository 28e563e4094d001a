"""ACTIVATE_FEATURE is refused up front, with no job written, for an unknown feature, a package that
fails an error rule or does not load, or a version the installed package does not satisfy; and the
lifecycle route of a feature Worker answers only NNO's service token for its own platform."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.core import Core
from nno.provisioning.features import compatible
from nno.provisioning.providers.local import LocalProvider
from tests.features.conftest import PROV, At, activate, provisioned_platform, sign_up


async def _jobs(client: httpx.AsyncClient, h: dict[str, str], pid: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{PROV}/jobs", params={"platformId": pid, "type": "ACTIVATE_FEATURE"}, headers=h)
    return list(resp.json()["data"])


@pytest.fixture
async def platform(client: httpx.AsyncClient, service_headers: dict[str, str]) -> tuple[str, str]:
    resp = await client.post("/api/v1/platforms", json={"name": "Refusals", "slug": "refusals"},
                             headers=service_headers)
    return str(resp.json()["id"]), "t1"


@pytest.mark.parametrize(("feature", "version", "status", "code"), [
    ("nope", "1.0.0", 404, "FEATURE_NOT_FOUND"),
    ("broken", "1.0.0", 422, "INVALID_FEATURE_PACKAGE"),
    ("unloadable", "latest", 422, "INVALID_FEATURE_PACKAGE"),
    ("tasks", "2.0.0", 409, "FEATURE_VERSION_UNAVAILABLE"),
    ("tasks", "1.0.1", 409, "FEATURE_VERSION_UNAVAILABLE"),
])
async def test_activation_refused_up_front(client: httpx.AsyncClient, service_headers: dict[str, str],
                                           platform: tuple[str, str], feature: str, version: str, status: int,
                                           code: str) -> None:
    pid, tenant = platform
    resp = await client.post(f"{PROV}/feature/activate", headers=service_headers, json={
        "platformId": pid, "entityId": tenant, "featureId": feature, "featureVersion": version,
        "environment": "prod"})
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code and feature in err["message"]
    if code == "INVALID_FEATURE_PACKAGE":
        rules = {f["rule"] for f in err["details"]["findings"]}
        assert rules == ({"V06"} if feature == "broken" else {"V01"})
        assert all(f["field"] and f["severity"] == "error" for f in err["details"]["findings"])
    assert await _jobs(client, service_headers, pid) == []


async def test_deactivating_an_unknown_feature_is_refused(client: httpx.AsyncClient,
                                                          service_headers: dict[str, str],
                                                          platform: tuple[str, str]) -> None:
    pid, tenant = platform
    resp = await client.post(f"{PROV}/feature/deactivate", headers=service_headers, json={
        "platformId": pid, "entityId": tenant, "featureId": "nope", "environment": "prod"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "FEATURE_NOT_FOUND"


async def test_older_compatible_requests_get_the_installed_version(
        client: httpx.AsyncClient, service_headers: dict[str, str], platform: tuple[str, str]) -> None:
    pid, tenant = platform
    resp = await client.post(f"{PROV}/feature/activate", headers=service_headers, json={
        "platformId": pid, "entityId": tenant, "featureId": "crm", "featureVersion": "1.0.0", "environment": "prod"})
    assert resp.status_code == 202, resp.text
    job = (await client.get(f"{PROV}/jobs/{resp.json()['jobId']}", headers=service_headers)).json()
    assert job["payload"]["featureVersion"] == "1.2.0"


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(*(st.integers(0, 9),) * 3), st.tuples(*(st.integers(0, 9),) * 3))
def test_compatibility_is_same_major_and_not_older(have: tuple[int, int, int], want: tuple[int, int, int]) -> None:
    assert compatible(".".join(map(str, have)), ".".join(map(str, want))) == (have[0] == want[0] and have >= want)
    assert compatible(".".join(map(str, have)), "latest")
    assert not compatible(".".join(map(str, have)), "1.x")


async def test_lifecycle_route_takes_only_this_platforms_service_token(
        client: httpx.AsyncClient, service_headers: dict[str, str], at: At, core: Core) -> None:
    from nno.iam import service_tokens

    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    assert (await activate(client, h, pid, tenant, "tasks"))["status"] == "COMPLETED"
    host = at(f"tasks.svc.default.{pid}.nno.localhost")
    body = {"event": "activate"}

    def minted(audience: str) -> dict[str, str]:
        token, _ = service_tokens.mint(core.settings, subject="t", audience=audience, ttl_s=60)
        return {"Authorization": f"Bearer {token}"}

    assert (await host.post("/_nno/lifecycle", json=body)).status_code == 401
    user = await sign_up(at, pid, "u@example.com")
    assert (await host.post("/_nno/lifecycle", json=body, headers={"Authorization": f"Bearer {user}"})
            ).status_code == 403
    assert (await host.post("/_nno/lifecycle", json=body, headers=minted("feature:a1b2c3d4e5"))).status_code == 403
    assert (await host.post("/_nno/lifecycle", json=body, headers=minted(f"auth:{pid}"))).status_code == 403
    bad = await host.post("/_nno/lifecycle", json={"event": "explode"}, headers=minted(f"feature:{pid}"))
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "event"
    ok = await host.post("/_nno/lifecycle", json=body, headers=minted(f"feature:{pid}"))
    assert ok.status_code == 200 and ok.json()["migrations"] == []  # already applied: nothing twice
    # The edge strips client X-Nno-* headers, and a cross-site form post riding a cookie is refused.
    cross = await host.post("/projects", data={"name": "x"}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403


async def test_a_failing_migration_rolls_the_activation_back(
        client: httpx.AsyncClient, service_headers: dict[str, str], at: At, core: Core) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    done = await activate(client, h, pid, tenant, "failing")
    assert done["status"] == "ROLLED_BACK", done
    failed = next(s for s in done["steps"] if s.get("error"))
    assert failed["name"] == "run_feature_migrations" and "no_such_table" in failed["error"]
    cloud = core.context("edge").extras["cloud"]
    assert await cloud.get_worker(f"{pid}-default-failing") is None
    assert not await cloud.d1_exists(f"{pid}-default-failing-db")
    provider = LocalProvider(core.settings)
    try:
        assert [r.name for r in await provider.list_platform_resources(pid) if "failing" in r.name] == []
    finally:
        await provider.close()
    assert (await client.get(f"/api/v1/platforms/{pid}/features", headers=h)).json()["data"] == []
    resources = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=h)).json()["data"]
    assert [r for r in resources if "failing" in r["name"] and r["status"] != "deleted"] == []


async def test_installed_features_need_a_caller(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    assert (await client.get(f"{PROV}/features")).status_code == 401
    assert (await client.get(f"{PROV}/features/tasks")).status_code == 401
    listed = (await client.get(f"{PROV}/features", headers=service_headers)).json()
    assert {"tasks", "settings", "members", "broken"} <= {f["id"] for f in listed["data"]}
    broken = (await client.get(f"{PROV}/features/broken", headers=service_headers)).json()
    assert broken["valid"] is False and [f["rule"] for f in broken["findings"]] == ["V06"]
    missing = await client.get(f"{PROV}/features/nope", headers=service_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "FEATURE_NOT_FOUND"
