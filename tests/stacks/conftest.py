"""Stack Registry tests: the gateway in front of IAM (users, operators) and the Stack Registry."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from nno.sdk.stack import AvailableFeature
from nno.stacks.service import INSTALLED_FEATURES_KEY

S = "/api/v1/stacks"
IAM = "/api/v1/iam"
PASSWORD = "correct-horse-9"
_counter = itertools.count()

# What the tests pretend is installed (publishing checks definitions against it).
INSTALLED = {
    "settings": AvailableFeature("settings", "1.0.0", frozenset({"kv"})),
    "members": AvailableFeature("members", "1.2.0"),
    "tasks": AvailableFeature("tasks", "1.1.0", frozenset({"d1"})),
    "notes": AvailableFeature("notes", "0.3.0", frozenset({"d1", "r2"})),
    "broken": AvailableFeature("broken", "1.0.0", errors=("V06 permissions[0].key: 'Broken' is not broken:<action>",)),
}


def installed(features: dict[str, AvailableFeature] | None = None) -> Callable[[], dict[str, AvailableFeature]]:
    chosen = INSTALLED if features is None else features
    return lambda: chosen


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    instance = Core(settings, services=["iam", "stacks"], with_edge=False)
    await instance.start()
    instance.context("stacks").extras[INSTALLED_FEATURES_KEY] = installed()
    try:
        yield instance
    finally:
        await instance.stop()


async def sign_up(client: httpx.AsyncClient, name: str = "user") -> dict[str, str]:
    email = f"{name}-{next(_counter)}@example.com"
    resp = await client.post(f"{IAM}/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "name": name})
    assert resp.status_code == 200, resp.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {resp.json()['token']}"}


async def bootstrap_operator(client: httpx.AsyncClient, service_headers: dict[str, str]) -> dict[str, str]:
    resp = await client.post(f"{IAM}/api/nno/bootstrap", headers=service_headers,
                             json={"email": "root@nno.localhost", "password": PASSWORD, "name": "Root"})
    assert resp.status_code == 201, resp.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.fixture
async def operator(client: httpx.AsyncClient, service_headers: dict[str, str]) -> dict[str, str]:
    return await bootstrap_operator(client, service_headers)


@pytest.fixture
async def user(client: httpx.AsyncClient) -> dict[str, str]:
    return await sign_up(client)


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])


async def create_template(client: httpx.AsyncClient, headers: dict[str, str], name: str | None = None,
                          **fields: Any) -> str:
    body = {"name": name or f"tpl-{next(_counter)}", "displayName": "A stack", "description": "For tests",
            **fields}
    resp = await client.post(f"{S}", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(body["name"])


async def publish(client: httpx.AsyncClient, headers: dict[str, str], name: str, version: str,
                  definition: dict[str, Any] | None = None, expect: int = 201) -> httpx.Response:
    definition = definition or {"resources": {"d1": True, "kv": True},
                                "features": [{"id": "settings"}, {"id": "tasks", "version": "^1.0.0"}]}
    resp = await client.post(f"{S}/{name}/versions", json={"version": version, "definition": definition},
                             headers=headers)
    assert resp.status_code == expect, resp.text
    return resp
