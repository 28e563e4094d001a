"""Onboarding through the whole core: the PROVISION_PLATFORM job asks Billing for the customer and
subscription (a trial when configured) and the platform's stripeCustomerId/trialEndsAt are set;
the trial's end starts the first paid period."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from tests.billing.conftest import B, advance, invoices
from tests.conftest import running_core

IAM = "/api/v1/iam"


@pytest.fixture
async def core(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Core]:
    monkeypatch.setenv("NNO_BILLING_TRIAL_DAYS", "14")
    async with running_core(settings) as instance:
        yield instance


async def _until(client: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any) -> dict[str, Any]:
    for _ in range(600):
        resp = await client.get(url, headers=headers)
        if resp.status_code == 200 and done(resp.json()):
            return dict(resp.json())
        await asyncio.sleep(0.05)
    raise AssertionError(resp.text)


async def test_onboarding_starts_a_trial_and_fills_the_registry(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    signed = await client.post(f"{IAM}/api/auth/sign-up/email",
                               json={"name": "Owner", "email": email, "password": "correct-horse-9"})
    client.cookies.clear()
    owner = {"Authorization": f"Bearer {signed.json()['token']}"}
    resp = await client.post("/api/v1/onboarding", headers=owner,
                             json={"platformName": "Acme", "slug": "acme-" + uuid.uuid4().hex[:6], "tier": "growth"})
    assert resp.status_code == 201, resp.text
    pid = resp.json()["platformId"]
    platform = await _until(client, f"/api/v1/platforms/{pid}", owner, lambda p: p["status"] == "active")
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=owner)).json()
    assert sub["status"] == "trialing" and sub["tier"] == "growth"
    assert platform["stripeCustomerId"] == sub["customerId"] and platform["stripeCustomerId"].startswith("cus_")
    assert platform["trialEndsAt"] == sub["trialEnd"]
    assert sub["trialEnd"] - sub["createdAt"] == 14 * 86_400_000
    assert await invoices(client, service_headers, pid) == []  # nothing to pay during the trial
    # The trial ends: the first paid month is invoiced and the subscription is active.
    await advance(client, service_headers, 15)
    sub = (await client.get(f"{B}/subscription", params={"platformId": pid}, headers=owner)).json()
    assert sub["status"] == "active"
    first = await invoices(client, service_headers, pid)
    assert [(i["amountDueCents"], i["status"]) for i in first] == [(19900, "paid")]


async def test_the_local_cloud_counts_worker_use_and_storage_per_tenant(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    signed = await client.post(f"{IAM}/api/auth/sign-up/email",
                               json={"name": "Owner", "email": email, "password": "correct-horse-9"})
    client.cookies.clear()
    owner = {"Authorization": f"Bearer {signed.json()['token']}"}
    resp = await client.post("/api/v1/onboarding", headers=owner,
                             json={"platformName": "Count", "slug": "count-" + uuid.uuid4().hex[:6], "tier": "starter"})
    assert resp.status_code == 201, resp.text
    pid = resp.json()["platformId"]
    await _until(client, f"/api/v1/platforms/{pid}", owner, lambda p: p["status"] == "active")
    # The default tenant's organization is made on the auth Worker once the platform is active: a call
    # of its own, to count before the test's calls.
    await _until(client, f"/api/v1/platforms/{pid}/tenants", service_headers,
                 lambda page: all(t["orgId"] for t in page["data"]))
    meter = core.context("edge").extras["meter"]
    await meter.flush()  # whatever provisioning itself sent to the worker
    before = await _invocations(client, service_headers, pid)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                 base_url=f"http://auth.svc.default.{pid}.nno.localhost:8787") as edge:
        for _ in range(7):
            assert (await edge.get("/api/nno/session")).status_code in (200, 401)
        written_before = await _invocations(client, service_headers, pid, "d1_rows_written")
        signed_up = await edge.post("/api/auth/sign-up/email", json={
            "name": "End", "email": f"end-{uuid.uuid4().hex[:6]}@example.com", "password": "another-horse-7"})
        assert signed_up.status_code in (200, 201), signed_up.text
    assert await meter.flush() >= 1
    assert await _invocations(client, service_headers, pid) == before + 8
    # The sign-up wrote the user, account and session rows into the platform's D1.
    assert await _invocations(client, service_headers, pid, "d1_rows_written") >= written_before + 3
    # A flush with nothing counted sends nothing, and counts stay exact.
    assert await meter.flush() == 0
    assert await _invocations(client, service_headers, pid) == before + 8
    # The auth Worker belongs to the default stack: its use is the default tenant's in the Registry.
    tenant = (await client.get(f"/api/v1/platforms/{pid}/stacks/default", headers=service_headers)).json()["tenantId"]
    usage = (await client.get(f"{B}/usage", params={"platformId": pid, "byTenant": "true"},
                              headers=service_headers)).json()
    assert [t["tenantId"] for t in usage["tenants"]] == [tenant]
    assert usage["tenants"][0]["usage"]["worker_invocations"] == before + 8

    # R2 storage: the bytes the platform's buckets hold, read by the local cloud; the period's peak counts.
    cloud = core.context("edge").extras["cloud"]
    bucket = f"{pid}-default-files-r2"
    await cloud.ensure_r2(bucket)
    objects = cloud.r2_bucket(bucket)  # files embedded, rows in PostgreSQL scaled
    await objects.put("a.txt", b"x" * 1000)
    await objects.put("b/c.bin", b"y" * 234)
    storage = core.context("edge").extras["r2_storage_meter"]
    assert await storage.measure() >= 1
    await meter.flush()
    assert await _invocations(client, service_headers, pid, "r2_storage_bytes") == 1234
    await objects.delete("a.txt")
    await storage.measure()
    await meter.flush()
    assert await _invocations(client, service_headers, pid, "r2_storage_bytes") == 1234  # the peak stands


async def _invocations(client: httpx.AsyncClient, headers: dict[str, str], pid: str,
                       metric: str = "worker_invocations") -> int:
    usage = (await client.get(f"{B}/usage", params={"platformId": pid}, headers=headers)).json()
    return int({m["metric"]: m["used"] for m in usage["metrics"]}[metric])
