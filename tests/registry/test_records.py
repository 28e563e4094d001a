"""What services record about a platform (resources, secret status, DNS, features, build state),
readable by the platform's admins, plus the cursor-paged audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from tests.registry.conftest import P, User, assert_error, audit_actions

from nno.core import Core
from nno.kernel.naming import build_resource_name


async def test_resources_secrets_and_dns(client: httpx.AsyncClient, service_headers: dict[str, str],
                                         make_user: Callable[..., Awaitable[User]],
                                         create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("res")
    pid = (await create_platform(ownerUserId=owner.id))["id"]
    other = (await create_platform())["id"]
    name = build_resource_name(pid, "default", "auth")
    body = {"type": "worker", "name": name, "cfResourceId": "local:worker/" + name, "provisionJobId": "job0000001"}
    first = await client.post(f"{P}/{pid}/resources", json=body, headers=service_headers)
    assert first.status_code == 201, first.text
    resource = first.json()
    assert resource["stackId"] == "default" and resource["status"] == "active" and resource["environment"] == "prod"
    again = await client.post(f"{P}/{pid}/resources", json=body, headers=service_headers)
    assert again.status_code == 200 and again.json()["id"] == resource["id"]  # idempotent

    for bad, code in (
        ({**body, "name": build_resource_name(other, "default", "auth")}, "INVALID_RESOURCE_NAME"),
        ({**body, "name": f"{pid}-Default-Auth"}, "INVALID_RESOURCE_NAME"),
        ({**body, "name": f"{name}\n"}, "INVALID_RESOURCE_NAME"),
        ({**body, "name": f"{pid}-" + "a" * 60}, "VALIDATION_ERROR"),
        ({**body, "type": "lambda"}, "VALIDATION_ERROR"),
        ({**body, "environment": "qa"}, "VALIDATION_ERROR"),
    ):
        assert_error(await client.post(f"{P}/{pid}/resources", json=bad, headers=service_headers), 400, code)
    assert_error(await client.post(f"{P}/{pid}/resources", json={**body, "stackId": "nosuchstak"},
                                   headers=service_headers), 404, "NOT_FOUND")
    # Admins read, only services write.
    assert_error(await client.post(f"{P}/{pid}/resources", json=body, headers=owner.headers), 403, "FORBIDDEN")
    listing = (await client.get(f"{P}/{pid}/resources", headers=owner.headers)).json()
    assert [r["name"] for r in listing["data"]] == [name]
    assert (await client.get(f"{P}/{other}/resources", headers=service_headers)).json()["data"] == []

    # Secret status, never values.
    put = await client.put(f"{P}/{pid}/resources/{resource['id']}/secrets", headers=service_headers,
                           json={"secrets": [{"name": "BETTER_AUTH_SECRET", "status": "set", "fingerprint": "ab12"}]})
    assert put.status_code == 200, put.text
    secret = put.json()["data"][0]
    assert secret["status"] == "set" and secret["lastSetAt"] and "value" not in secret
    assert_error(await client.put(f"{P}/{pid}/resources/{resource['id']}/secrets", headers=service_headers,
                                  json={"secrets": [{"name": "X", "status": "set", "value": "hunter2"}]}), 400)
    assert_error(await client.put(f"{P}/{pid}/resources/{resource['id']}/secrets", headers=owner.headers,
                                  json={"secrets": [{"name": "X", "status": "set"}]}), 403)
    read = (await client.get(f"{P}/{pid}/resources/{resource['id']}/secrets", headers=owner.headers)).json()
    assert [s["name"] for s in read["data"]] == ["BETTER_AUTH_SECRET"]

    # DNS: hostnames embed the platform id; registering twice updates.
    host = f"auth.svc.default.{pid}.nno.localhost"
    dns = {"hostname": host, "type": "svc", "resourceId": resource["id"], "target": name}
    created = await client.post(f"{P}/{pid}/dns-records", json=dns, headers=service_headers)
    assert created.status_code == 201, created.text
    assert (await client.post(f"{P}/{pid}/dns-records", json=dns, headers=service_headers)).status_code == 200
    assert_error(await client.post(f"{P}/{pid}/dns-records", json={**dns, "hostname": "auth.example.com"},
                                   headers=service_headers), 400, "VALIDATION_ERROR")
    assert_error(await client.post(f"{P}/{pid}/dns-records", json={**dns, "hostname": "bad_host." + pid},
                                   headers=service_headers), 400, "VALIDATION_ERROR")
    assert_error(await client.post(f"{P}/{pid}/dns-records", json={**dns, "hostname": host + "\n"},
                                   headers=service_headers), 400, "VALIDATION_ERROR")
    # A platform the caller cannot see answers 404, whatever the body.
    assert_error(await client.post(f"{P}/{other}/dns-records", json={**dns, "resourceId": None,
                                                                      "hostname": f"x.{other}.app"},
                                   headers=owner.headers), 404)
    hosts = (await client.get(f"{P}/{pid}/dns-records", headers=owner.headers)).json()
    assert [d["hostname"] for d in hosts["data"]] == [host]

    # Updates and soft delete.
    patched = await client.patch(f"{P}/{pid}/resources/{resource['id']}", json={"status": "failed"},
                                 headers=service_headers)
    assert patched.json()["status"] == "failed"
    deleted = await client.delete(f"{P}/{pid}/resources/{resource['id']}", headers=service_headers)
    assert deleted.json()["status"] == "deleted" and deleted.json()["deletedAt"]
    assert (await client.get(f"{P}/{pid}/resources", headers=service_headers)).json()["data"] == []
    with_deleted = (await client.get(f"{P}/{pid}/resources", params={"includeDeleted": "true"},
                                     headers=service_headers)).json()
    assert len(with_deleted["data"]) == 1
    assert_error(await client.get(f"{P}/{other}/resources/{resource['id']}", headers=service_headers), 404)
    actions = await audit_actions(client, service_headers, pid)
    for action in ("resource.register", "resource.update", "secret.status_change", "dns.create"):
        assert action in actions


async def test_feature_activations_and_the_starter_limit(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("feat")
    pid = (await create_platform(ownerUserId=owner.id))["id"]
    for i in range(5):
        resp = await client.post(f"{P}/{pid}/features", json={"featureId": f"feature-{i}", "version": "1.0.0"},
                                 headers=service_headers)
        assert resp.status_code == 201, resp.text
    first = resp.json()
    assert first["status"] == "pending" and first["environment"] == "prod" and first["config"] == {}
    # Same feature in another environment does not count twice; a sixth feature does.
    stg = await client.post(f"{P}/{pid}/features", json={"featureId": "feature-0", "version": "1.0.0",
                                                         "environment": "stg"}, headers=service_headers)
    assert stg.status_code == 201
    err = assert_error(await client.post(f"{P}/{pid}/features", json={"featureId": "feature-5", "version": "1"},
                                         headers=service_headers), 409, "FEATURE_LIMIT_REACHED")
    assert err["details"] == {"limit": 5, "current": 5, "tier": "starter", "resource": "features",
                              "upgradeTo": "growth", "upgradePath": "POST /api/v1/billing/subscription/change-tier"}
    # Confirming an activation updates the row (200).
    ok = await client.post(f"{P}/{pid}/features", json={"featureId": "feature-4", "version": "1.0.0",
                                                        "status": "active"}, headers=service_headers)
    assert ok.status_code == 200 and ok.json()["status"] == "active" and ok.json()["activatedAt"]

    gone = await client.delete(f"{P}/{pid}/features/feature-4", headers=service_headers)
    assert gone.status_code == 200 and gone.json()["status"] == "inactive"
    assert_error(await client.delete(f"{P}/{pid}/features/feature-4", headers=service_headers), 404)
    assert_error(await client.delete(f"{P}/{pid}/features/feature-1", headers=owner.headers), 403)
    now_fits = await client.post(f"{P}/{pid}/features", json={"featureId": "feature-5", "version": "1"},
                                 headers=service_headers)
    assert now_fits.status_code == 201
    listing = (await client.get(f"{P}/{pid}/features", params={"environment": "prod"},
                                headers=owner.headers)).json()
    assert sorted(f["featureId"] for f in listing["data"]) == [f"feature-{i}" for i in (0, 1, 2, 3, 5)]
    assert_error(await client.post(f"{P}/{pid}/features", json={"featureId": "Bad Id", "version": "1"},
                                   headers=service_headers), 400)
    assert_error(await client.post(f"{P}/{pid}/features", json={"featureId": "x", "version": "1",
                                                                 "entityId": "nosuchtent"},
                                   headers=service_headers), 404)


async def test_build_state_and_the_audit_log(
        client: httpx.AsyncClient, core: Core, service_headers: dict[str, str],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    built = (await create_platform())["id"]
    await _build_state(client, service_headers, built)
    await _audit_log(client, core, service_headers, (await create_platform())["id"])


async def _build_state(client: httpx.AsyncClient, service_headers: dict[str, str], pid: str) -> None:
    put = await client.put(f"{P}/{pid}/build-state", headers=service_headers,
                           json={"repoFullName": f"nno/nno-platform-{pid}", "lastBuildStatus": "building"})
    assert put.status_code == 200, put.text
    put2 = await client.put(f"{P}/{pid}/build-state", headers=service_headers,
                            json={"lastBuildStatus": "success", "lastCommitSha": "abc1234"})
    state = put2.json()
    assert state["repoFullName"] == f"nno/nno-platform-{pid}" and state["lastBuildStatus"] == "success"
    assert_error(await client.put(f"{P}/{pid}/build-state", json={"lastBuildStatus": "great"},
                                  headers=service_headers), 400)
    read = (await client.get(f"{P}/{pid}/build-state", headers=service_headers)).json()
    assert [b["environment"] for b in read["data"]] == ["prod"]


async def _audit_log(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str], pid: str) -> None:
    """Newest first, cursor-paged, and append-only in the database itself."""
    for i in range(4):
        await client.patch(f"{P}/{pid}", json={"name": f"Name {i}"}, headers=service_headers)
    first = (await client.get(f"{P}/{pid}/audit", params={"limit": 2}, headers=service_headers)).json()
    assert first["pagination"]["total"] == 7 and first["pagination"]["hasMore"] is True
    rows = list(first["data"])
    cursor = first["pagination"]["nextCursor"]
    while cursor:
        page = (await client.get(f"{P}/{pid}/audit", params={"limit": 2, "cursor": cursor},
                                 headers=service_headers)).json()
        rows += page["data"]
        cursor = page["pagination"]["nextCursor"]
    assert len({r["id"] for r in rows}) == 7
    assert [r["createdAt"] for r in rows] == sorted((r["createdAt"] for r in rows), reverse=True)
    assert rows[0]["action"] == "platform.update" and rows[0]["after"] == {"name": "Name 3"}
    assert rows[0]["actorType"] == "service" and rows[0]["requestId"]
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError):
            async with core.context("registry").db.session() as s:
                await s.execute(text(sql))
