"""Billing tests: the gateway in front of IAM, the Registry and Billing (the scheduler is driven
by the operator routes, not a background task), on either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from tests.registry.conftest import User, unique
from tests.registry.conftest import assert_error as assert_error  # re-exported for the billing tests

B = "/api/v1/billing"
P = "/api/v1/platforms"
IAM = "/api/v1/iam"
DAY = 86_400


@pytest.fixture(autouse=True)
def billing_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNO_BILLING_SCHEDULER", "false")
    monkeypatch.setenv("NNO_BILLING_GRACE_DAYS", "3")
    monkeypatch.setenv("NNO_BILLING_RETRY_HOURS", "24")


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    instance = Core(settings, services=["iam", "registry", "billing"], with_edge=False)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
def make_user(client: httpx.AsyncClient) -> Callable[..., Awaitable[User]]:
    async def factory(name: str = "user") -> User:
        email = f"{unique(name)}@example.com"
        resp = await client.post(f"{IAM}/api/auth/sign-up/email",
                                 json={"email": email, "password": "correct-horse-9", "name": name})
        assert resp.status_code == 200, resp.text
        client.cookies.clear()
        body = resp.json()
        return User(body["user"]["id"], email, body["token"])

    return factory


@pytest.fixture
def subscribed(client: httpx.AsyncClient, service_headers: dict[str, str]
               ) -> Callable[..., Awaitable[dict[str, Any]]]:
    """An active platform owned by `owner` with a Billing subscription on `tier`."""

    async def factory(owner: User | None = None, tier: str = "starter", **fields: Any) -> dict[str, Any]:
        body = {"name": "Acme", "slug": unique("acme"), "tier": tier, **fields}
        if owner is not None:
            body["ownerUserId"] = owner.id
        resp = await client.post(P, json=body, headers=service_headers)
        assert resp.status_code == 201, resp.text
        pid = resp.json()["id"]
        for action in ("bootstrap", "complete"):
            r = await client.post(f"{P}/{pid}/lifecycle", json={"action": action}, headers=service_headers)
            assert r.status_code == 200, r.text
        r = await client.post(f"{B}/customers", json={"platformId": pid, "tier": tier}, headers=service_headers)
        assert r.status_code == 201, r.text
        return {"platformId": pid, "subscription": r.json()}

    return factory


async def advance(client: httpx.AsyncClient, headers: dict[str, str], days: float) -> dict[str, Any]:
    resp = await client.post(f"{B}/test-clock/advance", json={"seconds": int(days * DAY)}, headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def platform_status(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> str:
    resp = await client.get(f"{P}/{pid}", headers=headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["status"])


async def invoices(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{B}/invoices", params={"platformId": pid, "limit": 100}, headers=headers)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])
