"""End to end through the Gateway: a person signs up and onboards a platform; the PROVISION_PLATFORM
job builds it in the local cloud; an end user then signs up on that platform's own auth Worker
through the edge router, and lands in that platform's D1 and nowhere else."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx

from nno.core import Core
from tests.d1sql import d1_rows, d1_tables

IAM = "/api/v1/iam"
PROV = "/api/v1/provisioning"


async def poll(client: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any,
               timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await client.get(url, headers=headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if done(body):
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)


async def users_in_d1(cloud: Any, name: str, email: str) -> int:
    """Accounts with `email` in a D1 (a SQLite file, or a PostgreSQL schema when scaled)."""
    tables = await d1_tables(cloud, name)
    total = 0
    for table in tables & {"user", "users"}:
        total += (await d1_rows(cloud, name, f"select count(*) from {table} where email = :e", {"e": email}))[0][0]
    return total


def users_in(path: Path, email: str) -> int:
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        total = 0
        for table in tables & {"user", "users"}:
            total += conn.execute(f"select count(*) from {table} where email = ?", (email,)).fetchone()[0]
        return total


async def test_sign_up_onboard_provision_then_end_user_signs_up_on_the_platform(
        core: Core, client: httpx.AsyncClient) -> None:
    owner_email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    signed = await client.post(f"{IAM}/api/auth/sign-up/email",
                               json={"name": "Owner", "email": owner_email, "password": "correct-horse-9"})
    assert signed.status_code == 200, signed.text
    client.cookies.clear()
    owner = {"Authorization": f"Bearer {signed.json()['token']}"}

    slug = "acme-" + uuid.uuid4().hex[:6]
    onboarding = await client.post("/api/v1/onboarding", headers=owner,
                                   json={"platformName": "Acme", "slug": slug, "tier": "starter"})
    assert onboarding.status_code == 201, onboarding.text
    session = onboarding.json()
    pid, job_id = session["platformId"], session["provisionJobId"]
    assert pid and job_id, session

    job = await poll(client, f"{PROV}/provision/jobs/{job_id}", owner,
                     lambda j: j["status"] in ("COMPLETED", "ROLLED_BACK", "ROLLBACK_FAILED"))
    assert job["status"] == "COMPLETED", job
    platform = (await client.get(f"/api/v1/platforms/{pid}", headers=owner)).json()
    assert platform["status"] == "active"
    session = await poll(client, f"/api/v1/onboarding/{session['id']}", owner,
                         lambda s: {x["name"]: x["status"] for x in s["steps"]}["provision_infra"] == "completed")
    steps = {x["name"]: x for x in session["steps"]}
    assert steps["provision_infra"]["jobId"] == job_id
    assert steps["verify"]["status"] == "completed"

    # An end user of the new platform signs up on its own auth Worker, through the edge router.
    end_user = f"end-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                 base_url=f"http://auth.svc.default.{pid}.nno.localhost:8787") as edge:
        resp = await edge.post("/api/auth/sign-up/email",
                               json={"name": "End", "email": end_user, "password": "another-horse-7"})
        assert resp.status_code in (200, 201), resp.text
        me = await edge.get("/api/nno/session", headers={"Authorization": f"Bearer {resp.json()['token']}"})
        assert me.status_code == 200 and me.json()["email"] == end_user

    # The row is in this platform's auth D1, and in no other database.
    cloud = core.context("edge").extras["cloud"]
    assert await users_in_d1(cloud, f"{pid}-default-auth-db", end_user) == 1
    data_dir = core.settings.data_dir.resolve()
    others = [p for p in data_dir.rglob("*") if p.is_file() and p.suffix in (".db", ".sqlite")
              and not p.name.startswith(f"{pid}-default-auth-db")]
    for path in others:
        try:
            assert users_in(path, end_user) == 0, path
        except sqlite3.DatabaseError:
            continue
    # The NNO IAM does not know this person either.
    nno = await client.post(f"{IAM}/api/auth/sign-in/email",
                            json={"email": end_user, "password": "another-horse-7"})
    assert nno.status_code == 401
