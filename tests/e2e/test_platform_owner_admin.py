"""End to end through the Gateway and the edge router: whoever onboards a platform administers that
platform's own auth Worker. The PROVISION_PLATFORM job seeds the owner's NNO address as an admin
invite there; the owner proves the mailbox by magic link on the platform's auth host and is its
platform-admin, while the platform's other users are not. Re-running the step or the whole job
asks for no second invite; a rolled-back job leaves nothing behind."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nno.core import Core
from nno.provisioning.models import ProvisionJob
from nno.provisioning.providers.base import ProviderError
from nno.provisioning.providers.local import LocalProvider
from nno.provisioning.steps.base import StepContext
from nno.provisioning.steps.platform import deploy_auth_worker
from tests.d1sql import d1_rows
from tests.e2e.test_onboarding_provisioning import poll

IAM = "/api/v1/iam"
PROV = "/api/v1/provisioning"
TERMINAL = ("COMPLETED", "ROLLED_BACK", "ROLLBACK_FAILED")
LINK_RE = re.compile(r"(http://auth\.[a-z0-9]+\.nno\.localhost:8787/api/auth/magic-link/verify\?token=\S+)")


def edge(core: Core, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=f"http://{host}:8787")


def auth_d1(pid: str) -> str:
    return f"{pid}-default-auth-db"


def cloud_of(core: Core) -> Any:
    return core.context("edge").extras["cloud"]


async def d1_count(core: Core, pid: str, sql: str, params: dict[str, Any] | None = None) -> int:
    return int((await d1_rows(cloud_of(core), auth_d1(pid), sql, params))[0][0])


async def invites(core: Core, pid: str) -> int:
    """Every admin invite the platform's auth D1 ever held (used, superseded or live)."""
    return await d1_count(core, pid, "SELECT count(*) FROM verifications WHERE kind = 'platform_admin_grant'")


async def invite_audits(core: Core, pid: str) -> int:
    return await d1_count(core, pid, "SELECT count(*) FROM audit_log WHERE action = 'user.admin_invite'")


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in job["steps"] if s["name"] == name)
    return found


async def sign_up_nno(client: httpx.AsyncClient) -> tuple[str, str, dict[str, str]]:
    email = f"Owner-{uuid.uuid4().hex[:8]}@Example.com"
    signed = await client.post(f"{IAM}/api/auth/sign-up/email",
                               json={"name": "Owner", "email": email, "password": "correct-horse-9"})
    assert signed.status_code == 200, signed.text
    client.cookies.clear()
    return signed.json()["user"]["id"], email.lower(), {"Authorization": f"Bearer {signed.json()['token']}"}


async def onboard(client: httpx.AsyncClient, owner: dict[str, str]) -> tuple[str, str]:
    resp = await client.post("/api/v1/onboarding", headers=owner,
                             json={"platformName": "Acme", "slug": "acme-" + uuid.uuid4().hex[:6], "tier": "starter"})
    assert resp.status_code == 201, resp.text
    return resp.json()["platformId"], resp.json()["provisionJobId"]


async def wait_job(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    return await poll(client, f"{PROV}/provision/jobs/{job_id}", headers, lambda j: j["status"] in TERMINAL)


async def run_job(client: httpx.AsyncClient, headers: dict[str, str], path: str,
                  body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(f"{PROV}/provision{path}", json=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return await wait_job(client, headers, resp.json()["jobId"])


async def magic_sign_in(core: Core, auth: httpx.AsyncClient, pid: str, email: str) -> dict[str, str]:
    """Ask the platform's auth host for a link, take it from that platform's mail outbox (the mail
    that was not there before: no reliance on clock order), follow it."""

    async def mails() -> dict[str, str]:
        rows = await d1_rows(cloud_of(core), auth_d1(pid), "SELECT id, body FROM mail_outbox WHERE to_address = :e",
                             {"e": email})
        return {str(mail_id): str(body) for mail_id, body in rows}

    before = await mails()
    asked = await auth.post("/api/auth/sign-in/magic-link", json={"email": email})
    assert asked.status_code == 200, asked.text
    new = [body for mail_id, body in (await mails()).items() if mail_id not in before]
    assert len(new) == 1, new
    body = new[0]
    link = LINK_RE.search(body)
    assert link, body
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi)) as browser:
        followed = await browser.get(link.group(1))  # the link's own host: auth.{pid}.nno.localhost
    assert followed.status_code == 200, followed.text
    return {"Authorization": f"Bearer {followed.json()['token']}"}


async def role(auth: httpx.AsyncClient, who: dict[str, str]) -> str:
    me = await auth.get("/api/nno/session", headers=who)
    assert me.status_code == 200, me.text
    return str(me.json()["role"])


async def test_the_owner_administers_the_platform_auth_worker_and_nobody_else_does(
        core: Core, client: httpx.AsyncClient) -> None:
    owner_id, owner_email, owner = await sign_up_nno(client)
    pid, job_id = await onboard(client, owner)
    job = await wait_job(client, owner, job_id)
    assert job["status"] == "COMPLETED", job
    # No step was added for it: the auth Worker's deployment does it.
    assert [s["name"] for s in job["steps"]] == [
        "mark_platform_provisioning", "create_auth_d1", "deploy_auth_worker", "set_auth_worker_secrets",
        "create_console_pages", "register_dns", "register_resources", "mark_platform_active"]
    seeded = step(job, "deploy_auth_worker")["output"]["ownerAdmin"]
    assert seeded["userId"] == owner_id and seeded["email"] == owner_email
    assert seeded["status"] == "pending" and seeded["created"] is True and seeded["seededByJob"] == job_id
    assert await invites(core, pid) == 1

    async with edge(core, f"auth.svc.default.{pid}.nno.localhost") as auth:
        # Someone else takes the owner's address with a password first: that proves no mailbox.
        squatter = await auth.post("/api/auth/sign-up/email",
                                   json={"name": "Mallory", "email": owner_email, "password": "squatting-pass-1"})
        assert squatter.status_code in (200, 201), squatter.text
        auth.cookies.clear()
        mallory = {"Authorization": f"Bearer {squatter.json()['token']}"}
        assert await role(auth, mallory) == "user"

        # An end user of the platform, by password and by magic link: users, not admins.
        end = await auth.post("/api/auth/sign-up/email", json={
            "name": "End", "email": f"end-{uuid.uuid4().hex[:6]}@example.com", "password": "another-horse-7"})
        assert end.status_code in (200, 201), end.text
        auth.cookies.clear()
        end_user = {"Authorization": f"Bearer {end.json()['token']}"}
        linked = await magic_sign_in(core, auth, pid, f"linked-{uuid.uuid4().hex[:6]}@example.com")
        for who in (end_user, linked):
            assert await role(auth, who) == "user"
            refused = await auth.get("/api/nno/platform-admins", headers=who)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"

        # The owner proves the mailbox on the platform's own auth host: platform-admin there.
        boss = await magic_sign_in(core, auth, pid, owner_email)
        me = (await auth.get("/api/nno/session", headers=boss)).json()
        assert me["role"] == "platform-admin" and me["platformId"] == pid and me["email"] == owner_email
        admins = await auth.get("/api/nno/platform-admins", headers=boss)
        assert admins.status_code == 200, admins.text
        assert [a["email"] for a in admins.json()["data"]] == [owner_email]
        # ...and may administer the platform's users: those whose address is proven.
        unproven = await auth.put(f"/api/nno/users/{end.json()['user']['id']}/role", headers=boss,
                                  json={"role": "platform-admin"})
        assert unproven.status_code == 403 and unproven.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"
        linked_id = (await auth.get("/api/auth/get-session", headers=linked)).json()["user"]["id"]
        promoted = await auth.put(f"/api/nno/users/{linked_id}/role", headers=boss, json={"role": "platform-admin"})
        assert promoted.status_code == 200, promoted.text

    # The owner's NNO session means nothing on the platform's auth Worker, and vice versa.
    async with edge(core, f"auth.svc.default.{pid}.nno.localhost") as auth:
        assert (await auth.get("/api/nno/platform-admins", headers=owner)).status_code == 401
    assert (await client.get(f"{IAM}/api/nno/session", headers=boss)).status_code == 401


async def test_rerunning_the_step_or_the_job_asks_for_no_second_invite(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    _, owner_email, owner = await sign_up_nno(client)
    pid, first_id = await onboard(client, owner)
    first = await wait_job(client, owner, first_id)
    assert first["status"] == "COMPLETED", first
    assert await invites(core, pid) == 1

    # The whole job again (an auth-Worker redeploy): the invite it made stands, none is added.
    second = await run_job(client, service_headers, "/platform", {"platformId": pid})
    assert second["status"] == "COMPLETED", second
    deploy = step(second, "deploy_auth_worker")
    assert deploy["status"] == "skipped", deploy
    assert deploy["output"]["ownerAdmin"]["status"] == "pending"
    assert deploy["output"]["ownerAdmin"]["created"] is False
    assert deploy["output"]["ownerAdmin"]["seededByJob"] == first_id

    # The step itself, twice more, as a fresh job would run it.
    prov = core.context("provisioning")
    for _ in range(2):
        sctx = StepContext(ctx=prov, job_id="x" + uuid.uuid4().hex[:9], job_type="PROVISION_PLATFORM",
                           platform_id=pid, environment="prod", payload={"platformId": pid},
                           outputs={"create_auth_d1": step(first, "create_auth_d1")["output"]})
        result = await deploy_auth_worker(sctx)
        assert result.changed is False and result.output["ownerAdmin"]["created"] is False
    assert await invites(core, pid) == 1 and await invite_audits(core, pid) == 1

    # Once the owner has signed in, a re-run finds them admin and still adds nothing.
    async with edge(core, f"auth.svc.default.{pid}.nno.localhost") as auth:
        boss = await magic_sign_in(core, auth, pid, owner_email)
        assert await role(auth, boss) == "platform-admin"
    third = await run_job(client, service_headers, "/platform", {"platformId": pid})
    assert third["status"] == "COMPLETED", third
    assert step(third, "deploy_auth_worker")["output"]["ownerAdmin"]["status"] == "granted"
    assert await invites(core, pid) == 1 and await invite_audits(core, pid) == 1

    # Deprovisioning removes the auth D1, and the invite with it.
    gone = await run_job(client, service_headers, "/platform/deprovision", {"platformId": pid})
    assert gone["status"] == "COMPLETED", gone
    assert not await cloud_of(core).d1_exists(auth_d1(pid))


async def test_an_expired_invite_is_renewed_by_a_rerun(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    _, owner_email, owner = await sign_up_nno(client)
    pid, first_id = await onboard(client, owner)
    assert (await wait_job(client, owner, first_id))["status"] == "COMPLETED"
    await d1_rows(cloud_of(core), auth_d1(pid),
                  "UPDATE verifications SET expires_at = 1 WHERE kind = 'platform_admin_grant'")
    # Provisioning's record says when the invite runs out; age it the same way.
    async with core.context("provisioning").db.session() as s:
        row = (await s.execute(select(ProvisionJob).where(ProvisionJob.id == first_id))).scalar_one()
        steps = [dict(x) for x in row.steps]
        for rec in steps:
            if rec["name"] == "deploy_auth_worker":
                rec["output"] = {**rec["output"], "ownerAdmin": {**rec["output"]["ownerAdmin"], "expiresAt": 1}}
        row.steps = steps
    again = await run_job(client, service_headers, "/platform", {"platformId": pid})
    assert again["status"] == "COMPLETED", again
    renewed = step(again, "deploy_auth_worker")["output"]["ownerAdmin"]
    assert renewed["created"] is True and renewed["status"] == "pending" and renewed["email"] == owner_email
    async with edge(core, f"auth.svc.default.{pid}.nno.localhost") as auth:
        assert await role(auth, await magic_sign_in(core, auth, pid, owner_email)) == "platform-admin"


async def test_a_rolled_back_job_leaves_no_invite_and_an_ownerless_platform_gets_none(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def pages_down(self: LocalProvider, name: str, **_: Any) -> Any:
        raise ProviderError("Pages refused the project", retryable=False)

    monkeypatch.setattr(LocalProvider, "ensure_pages", pages_down)
    _, _, owner = await sign_up_nno(client)
    pid, job_id = await onboard(client, owner)
    job = await wait_job(client, owner, job_id)
    assert job["status"] == "ROLLED_BACK", job
    assert step(job, "deploy_auth_worker")["output"]["ownerAdmin"]["created"] is True  # it was asked for
    assert step(job, "deploy_auth_worker")["status"] == "rolled_back"
    assert not await cloud_of(core).d1_exists(auth_d1(pid))  # and went with the platform's auth D1
    provider = LocalProvider(core.settings)
    try:
        assert await provider.list_platform_resources(pid) == []
    finally:
        await provider.close()
    monkeypatch.undo()

    # A platform created by a service without an owner: no one to invite, nothing asked.
    made = await client.post("/api/v1/platforms", headers=service_headers,
                             json={"name": "Nobody's", "slug": "n-" + uuid.uuid4().hex[:8]})
    assert made.status_code == 201, made.text
    ownerless = made.json()["id"]
    done = await run_job(client, service_headers, "/platform", {"platformId": ownerless})
    assert done["status"] == "COMPLETED", done
    assert step(done, "deploy_auth_worker")["output"]["ownerAdmin"] == {
        "status": "skipped", "reason": "the platform has no owner"}
    assert await invites(core, ownerless) == 0
