"""Helpers for Registry tests: everything goes through the gateway (`/api/v1/platforms`,
`/api/v1/onboarding`), users sign up with IAM, services use the static key."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from nno.kernel.identity import SERVICE_IDENTITY
from nno.registry.access import Access
from nno.registry.service import PlatformService

P = "/api/v1/platforms"
ONB = "/api/v1/onboarding"
IAM = "/api/v1/iam"
PASSWORD = "correct-horse-9"
_counter = itertools.count()


@dataclass
class User:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["requestId"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    """The gateway in front of IAM and the Registry only: the Registry needs IAM for users and
    platform membership, nothing else (onboarding's tests bring Provisioning back)."""
    instance = Core(settings, services=["iam", "registry"], with_edge=False)
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
                                 json={"email": email, "password": PASSWORD, "name": name})
        assert resp.status_code == 200, resp.text
        client.cookies.clear()  # tests pass tokens explicitly
        body = resp.json()
        return User(body["user"]["id"], email, body["token"])

    return factory


@pytest.fixture
def create_platform(client: httpx.AsyncClient, service_headers: dict[str, str]
                    ) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A platform created by a service caller (POST /api/v1/platforms)."""

    async def factory(**fields: Any) -> dict[str, Any]:
        body = {"name": "Acme", "slug": unique("acme"), **fields}
        resp = await client.post(P, json=body, headers=service_headers)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    return factory


async def audit_actions(client: httpx.AsyncClient, headers: dict[str, str], platform_id: str) -> list[str]:
    resp = await client.get(f"{P}/{platform_id}/audit", params={"limit": 100}, headers=headers)
    assert resp.status_code == 200, resp.text
    return [row["action"] for row in resp.json()["data"]]


@pytest.fixture
def registry_service(core: Core) -> PlatformService:
    return PlatformService(core.context("registry"))


SERVICE_ACCESS = Access(SERVICE_IDENTITY, None)
