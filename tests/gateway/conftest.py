"""Gateway test harness: a gateway built with `create_gateway` over test-only fake services (echo,
fake IAM, fake Registry), on the selected backend (scaled: Redis KV and the Redis rate limiter)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from nno.gateway.app import Gateway, create_gateway
from nno.kernel.bindings import ASGIBinding, Binding, Bindings
from nno.kernel.config import Settings
from nno.kernel.kv import KeyValueStore, MemoryKV, RedisKV, redis_client
from tests.conftest import BACKEND, REDIS_URL, SERVICE_KEY, clear_redis_prefix
from tests.gateway.fakes import FakeIAM, FakeRegistry, echo_app

SESSION_TOKEN = "sess-" + "a" * 40
OPERATOR_TOKEN = "sess-" + "o" * 40
API_KEY = "nno_" + "k" * 40
CLIENT_ADDR = ("203.0.113.7", 40000)
BASE = "http://gateway.test"

SESSION_DATA = {"userId": "user1", "email": "ann@example.com", "name": "Ann", "role": "platform-admin",
                "platformId": "plat1", "activeOrganizationId": "org1", "expiresAt": 0,
                "sessionId": "s1", "permissions": []}
KEY_DATA = {"keyId": "key1", "platformId": "plat2", "userId": "user2", "permissions": ["platforms:read"]}


@dataclass
class Harness:
    settings: Settings
    bindings: Bindings
    kv: KeyValueStore
    gateway: Gateway
    iam: FakeIAM
    registry: FakeRegistry
    client: httpx.AsyncClient
    extra: dict[str, Any] = field(default_factory=dict)


def received_headers(resp: httpx.Response) -> dict[str, str]:
    """The headers the echo upstream received (lower-cased names; last value wins)."""
    return {k.lower(): v for k, v in resp.json()["headers"]}


@pytest.fixture
def redis_prefix() -> str:
    return f"nnotest:gw:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def make_gateway(
    tmp_path: Path, redis_prefix: str
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    made: list[Harness] = []

    async def factory(
        *, services: dict[str, ASGIApp | Binding] | None = None, with_defaults: bool = True, **overrides: Any
    ) -> Harness:
        values: dict[str, Any] = {"auth_api_key": SERVICE_KEY, "data_dir": tmp_path / "data"}
        if BACKEND == "scaled":
            values.update(redis_url=REDIS_URL, redis_prefix=redis_prefix)
        values.update(overrides)
        settings = Settings(**values)
        kv: KeyValueStore = (
            RedisKV(redis_client(REDIS_URL), redis_prefix) if BACKEND == "scaled" else MemoryKV()
        )
        iam, registry = FakeIAM(), FakeRegistry()
        iam.sessions[SESSION_TOKEN] = dict(SESSION_DATA)
        iam.sessions[OPERATOR_TOKEN] = {**SESSION_DATA, "userId": "op1", "role": "nno-operator",
                                        "platformId": None}
        iam.keys[API_KEY] = dict(KEY_DATA)
        bindings = Bindings()
        apps: dict[str, ASGIApp | Binding] = {}
        if with_defaults:
            apps = {"iam": iam.app(), "registry": registry.app(), "provisioning": echo_app()}
        apps.update(services or {})
        for name, app in apps.items():
            if isinstance(app, ASGIBinding) or hasattr(app, "forward"):
                bindings.add(app)  # type: ignore[arg-type]
            else:
                bindings.add(ASGIBinding(name, app, settings.upstream_timeout_s))
        gateway = create_gateway(settings, bindings, kv)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway, client=CLIENT_ADDR), base_url=BASE)
        harness = Harness(settings, bindings, kv, gateway, iam, registry, client)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        await harness.client.aclose()
        await harness.bindings.close()
        await harness.kv.close()
    if BACKEND == "scaled":
        await clear_redis_prefix(redis_prefix)


@pytest.fixture
async def gw(make_gateway: Callable[..., Awaitable[Harness]]) -> Harness:
    return await make_gateway()


async def asgi_request(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    raw_path: bytes | None = None,
    query: bytes = b"",
    body: bytes = b"",
    client: tuple[str, int] = CLIENT_ADDR,
) -> tuple[int, dict[bytes, bytes], bytes]:
    """A raw ASGI call (exact header casing, exact raw_path), returning (status, headers, body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": raw_path if raw_path is not None else path.encode(),
        "query_string": query, "root_path": "", "headers": headers or [(b"host", b"gateway.test")],
        "client": client, "server": ("gateway.test", 80),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    status = 0
    out_headers: dict[bytes, bytes] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update({k: v for k, v in message["headers"]})
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, out_headers, b"".join(chunks)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


SERVICE = bearer(SERVICE_KEY)
