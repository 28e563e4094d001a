"""A per-platform auth app's feature-permission catalogue: provisioning registers a feature's keys
with a service token for that platform (no other credential writes it), members of an organization
hold the `required` keys by default and owners/admins all of them, and explicit denials still win."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from nno.iam import service_tokens
from nno.kernel.config import Settings
from nno.kernel.db import Database
from tests.iam.conftest import assert_error, platform_auth_client, platform_auth_db, sign_up

PID, OTHER_PID = "k3m9p2xw7q", "a1b2c3d4e5"
PERMS = {"permissions": [{"key": "tasks:read", "label": "Read", "required": True},
                         {"key": "tasks:manage", "label": "Manage"}]}


@pytest.fixture
async def db(tmp_path: Path, settings: Settings) -> AsyncIterator[Database]:
    async with platform_auth_db(settings, tmp_path, PID) as database:
        yield database


@pytest.fixture
async def auth(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with platform_auth_client(db, settings, PID) as client:
        yield client


def token(settings: Settings, pid: str = PID) -> dict[str, str]:
    minted, _ = service_tokens.mint(settings, subject="provisioning", audience=f"auth:{pid}", ttl_s=60)
    return {"Authorization": f"Bearer {minted}"}


async def test_only_nno_for_this_platform_registers_keys(auth: httpx.AsyncClient, settings: Settings) -> None:
    user = await sign_up(auth, "ada@example.com", prefix="")
    path = "/api/nno/feature-permissions/tasks"
    assert_error(await auth.put(path, json=PERMS), 401)
    assert_error(await auth.put(path, json=PERMS, headers=user.headers), 403, "FORBIDDEN")
    assert_error(await auth.put(path, json=PERMS, headers=token(settings, OTHER_PID)), 403, "WRONG_AUDIENCE")
    assert_error(await auth.delete(path, headers=user.headers), 403, "FORBIDDEN")
    resp = await auth.put(path, json=PERMS, headers=token(settings))
    assert resp.status_code == 200, resp.text
    listed = (await auth.get("/api/nno/feature-permissions", headers=user.headers)).json()
    assert [(p["key"], p["required"]) for p in listed["data"]] == [("tasks:manage", False), ("tasks:read", True)]
    assert (await auth.get("/api/nno/feature-permissions")).status_code == 401

    # Keys of another feature, or malformed, are refused and change nothing.
    bad = {"permissions": [{"key": "billing:read", "label": "x"}]}
    assert_error(await auth.put(path, json=bad, headers=token(settings)), 400, "VALIDATION_ERROR")
    assert_error(await auth.put(path, json={"permissions": [{"key": "Tasks_Read", "label": "x"}]},
                                headers=token(settings)), 400)
    assert_error(await auth.put("/api/nno/feature-permissions/billing", json={
        "permissions": [{"key": "tasks:read", "label": "x"}]}, headers=token(settings)), 400)
    assert len((await auth.get("/api/nno/feature-permissions", headers=user.headers)).json()["data"]) == 2

    # Re-registering replaces the set; deleting removes it.
    again = {"permissions": [{"key": "tasks:read", "label": "View", "required": True}]}
    assert (await auth.put(path, json=again, headers=token(settings))).status_code == 200
    listed = (await auth.get("/api/nno/feature-permissions", headers=user.headers)).json()["data"]
    assert [(p["key"], p["label"]) for p in listed] == [("tasks:read", "View")]
    assert (await auth.delete(path, headers=token(settings))).json()["removed"] == 1
    assert (await auth.get("/api/nno/feature-permissions", headers=user.headers)).json()["data"] == []


async def test_members_hold_required_keys_owners_all_and_denials_win(
        auth: httpx.AsyncClient, db: Database, settings: Settings) -> None:
    assert (await auth.put("/api/nno/feature-permissions/tasks", json=PERMS, headers=token(settings))).status_code \
        == 200
    owner = await sign_up(auth, "owner@example.com", prefix="")
    member = await sign_up(auth, "member@example.com", prefix="")
    org = (await auth.post("/api/auth/organization/create", json={"name": "Team", "slug": "team"},
                           headers=owner.headers)).json()
    added = await auth.post("/api/auth/organization/add-member", json={"userId": member.id, "role": "member"},
                            headers=owner.headers)
    assert added.status_code == 201, added.text

    async def perms(headers: dict[str, str]) -> list[str]:
        return list((await auth.get("/api/nno/session", headers=headers)).json()["permissions"])

    assert await perms(owner.headers) == ["tasks:manage", "tasks:read"]
    assert await perms(member.headers) == []  # no active organization yet
    await auth.post("/api/auth/organization/set-active", json={"organizationId": org["id"]}, headers=member.headers)
    assert await perms(member.headers) == ["tasks:read"]
    async with db.session() as s:
        await s.execute(text("INSERT INTO permission_grants (id, user_id, org_id, permission, granted, granted_by, "
                             "created_at) VALUES ('g1', :u, :o, 'tasks:read', false, 'test', 0)"),
                        {"u": member.id, "o": org["id"]})
    assert await perms(member.headers) == []


async def test_another_platform_app_knows_nothing_of_these_keys(
        tmp_path: Path, settings: Settings, auth: httpx.AsyncClient) -> None:
    assert (await auth.put("/api/nno/feature-permissions/tasks", json=PERMS, headers=token(settings))).status_code \
        == 200
    async with platform_auth_db(settings, tmp_path, OTHER_PID) as other_db, \
            platform_auth_client(other_db, settings, OTHER_PID) as other:
        user = await sign_up(other, "eve@example.com", prefix="")
        assert (await other.get("/api/nno/feature-permissions", headers=user.headers)).json()["data"] == []
        # Nor does its token write here, nor this platform's token there.
        assert_error(await other.put("/api/nno/feature-permissions/tasks", json=PERMS, headers=token(settings)),
                     403, "WRONG_AUDIENCE")
