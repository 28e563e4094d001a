"""Seeding the platform owner as admin of the platform's auth Worker (inside deploy_auth_worker), with
an injected cloud: a failed call is retried without a second invite, a refusal fails the job clearly
and rolls it back, and an IAM that no longer knows the owner skips the seed instead of failing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from nno.core import Core
from tests.provisioning.conftest import PROV, wait_job
from tests.provisioning.fakes import FakeCloud, Fault


async def onboard(client: httpx.AsyncClient, email: str | None = None) -> tuple[str, str, str]:
    """(platform id, job id, owner email) for a platform onboarded by a new NNO user."""
    email = email or f"owner-{uuid.uuid4().hex[:8]}@example.com"
    signed = await client.post("/api/v1/iam/api/auth/sign-up/email",
                               json={"name": "Owner", "email": email, "password": "correct-horse-9"})
    assert signed.status_code == 200, signed.text
    client.cookies.clear()
    owner = {"Authorization": f"Bearer {signed.json()['token']}"}
    resp = await client.post("/api/v1/onboarding", headers=owner, json={
        "platformName": "Acme", "slug": "acme-" + uuid.uuid4().hex[:6], "tier": "starter"})
    assert resp.status_code == 201, resp.text
    return resp.json()["platformId"], resp.json()["provisionJobId"], email


def deploy_step(job: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in job["steps"] if s["name"] == "deploy_auth_worker")
    return found


async def test_a_failed_worker_call_is_retried_and_asks_once(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    fake.faults.append(Fault("call_worker", times=1, retryable=True))
    pid, job_id, email = await onboard(client)
    job = await wait_job(client, service_headers, job_id)
    assert job["status"] == "COMPLETED", job
    assert job["attempts"] == 2
    assert fake.invites == {f"{pid}-default-auth": [email]}
    seeded = deploy_step(job)["output"]["ownerAdmin"]
    assert seeded["status"] == "pending" and seeded["created"] is True and seeded["email"] == email

    again = await client.post(f"{PROV}/provision/platform", json={"platformId": pid}, headers=service_headers)
    assert (await wait_job(client, service_headers, again.json()["jobId"]))["status"] == "COMPLETED"
    assert fake.invites == {f"{pid}-default-auth": [email]}


async def test_an_owner_already_admin_is_not_invited(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"

    class AdminEverywhere(dict[str, set[str]]):
        def get(self, key: str, default: Any = None) -> set[str]:
            return {email.upper()}

    # The Worker answers for a platform whose owner is admin there already (e.g. a restored D1).
    # Set before onboarding: the job may reach that step before `onboard` returns.
    fake.admins = AdminEverywhere()
    _, job_id, _ = await onboard(client, email)
    job = await wait_job(client, service_headers, job_id)
    assert job["status"] == "COMPLETED", job
    assert deploy_step(job)["output"]["ownerAdmin"]["status"] == "granted"
    assert fake.invites == {}


async def test_a_refused_invite_fails_the_job_clearly_and_rolls_it_back(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    fake.worker_answers = [(200, {"data": []}),
                           (403, {"error": {"code": "WRONG_AUDIENCE", "message": "not for this platform"}})]
    _, job_id, _ = await onboard(client)
    job = await wait_job(client, service_headers, job_id)
    assert job["status"] == "ROLLED_BACK", job
    assert job["errorCode"] == "AUTH_WORKER_WRONG_AUDIENCE" and job["attempts"] == 1, job
    assert "403" in job["error"]
    assert fake.names() == set()  # the Worker and its D1 are gone again


async def test_an_owner_unknown_to_iam_is_skipped_not_fatal(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    made = await client.post("/api/v1/platforms", headers=service_headers, json={
        "name": "Ghost", "slug": "g-" + uuid.uuid4().hex[:8], "ownerUserId": "nosuchuser"})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    resp = await client.post(f"{PROV}/provision/platform", json={"platformId": pid}, headers=service_headers)
    job = await wait_job(client, service_headers, resp.json()["jobId"])
    assert job["status"] == "COMPLETED", job
    assert deploy_step(job)["output"]["ownerAdmin"] == {
        "status": "skipped", "userId": "nosuchuser", "reason": "the owner's NNO account no longer exists"}
    assert not [c for c in fake.calls if c[0] == "call_worker"]
