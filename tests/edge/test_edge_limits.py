"""Platform hosts (`*.{platformId}.nno.localhost`) get the gateway's protections: its rate limit
(per client, target and route: host and path aliases of one target share a budget), its body limit,
and a platform's auth app throttles failed sign-ins like NNO's IAM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from nno.provisioning.providers.local import LocalProvider
from tests.edge.conftest import P1, built, deploy_echo
from tests.edge.test_auth_worker import deploy_auth

LIMIT = 8
BODY_LIMIT = 4096
At = Callable[[str], httpx.AsyncClient]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(rate_limit=f"{LIMIT}/60s", max_body_bytes=BODY_LIMIT)


@pytest.fixture
async def from_client(core: Core) -> AsyncIterator[Callable[[str, str], httpx.AsyncClient]]:
    """`from_client(ip, host)`: a client on the core connecting from `ip`, addressing `host`."""
    clients: list[httpx.AsyncClient] = []

    def make(ip: str, host: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi, client=(ip, 5000)),
                              base_url=f"http://{host}:8787")
        clients.append(c)
        return c

    try:
        yield make
    finally:
        for c in clients:
            await c.aclose()


async def test_a_workers_host_is_rate_limited_per_client_target_and_route(
    provider: LocalProvider, at: At, from_client: Callable[[str, str], httpx.AsyncClient]
) -> None:
    await deploy_echo(provider, P1)
    short, full = at(f"echo.{P1}.nno.localhost"), at(f"echo.svc.default.{P1}.nno.localhost")
    # Two host names of one Worker and two spellings of one path: one budget.
    for i in range(LIMIT):
        client = short if i % 2 else full
        resp = await client.get("/things/" if i % 3 else "/things")
        assert resp.status_code == 200, resp.text
    refused = await short.get("/things//")
    assert refused.status_code == 429, refused.json()
    error = refused.json()["error"]
    assert error["code"] == "RATE_LIMITED" and error["requestId"] == refused.headers["x-request-id"]
    assert int(refused.headers["retry-after"]) >= 1 and error["details"]["limit"] == LIMIT
    assert refused.headers["x-content-type-options"] == "nosniff"
    # Another route, or another client, has its own budget.
    assert (await short.get("/other")).status_code == 200
    assert (await from_client("192.0.2.44", f"echo.{P1}.nno.localhost").get("/things")).status_code == 200


async def test_unknown_platform_hosts_are_rate_limited_too(at: At) -> None:
    nowhere = at("nothing.zz9zz9zz9z.nno.localhost")
    statuses = [(await nowhere.get("/")).status_code for _ in range(LIMIT + 1)]
    assert statuses == [404] * LIMIT + [429]


async def test_a_declared_body_over_the_limit_never_reaches_the_worker(provider: LocalProvider, at: At) -> None:
    await deploy_echo(provider, P1)
    echo = at(f"echo.{P1}.nno.localhost")
    resp = await echo.post("/upload", content=b"x" * (BODY_LIMIT + 1))
    assert resp.status_code == 413
    error = resp.json()["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE" and error["details"] == {"limit": BODY_LIMIT}
    assert built == []  # refused before the Worker was even started
    bad = await echo.post("/upload", content=b"x", headers={"content-length": "1x"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    ok = await echo.post("/upload", content=b"y" * BODY_LIMIT)
    assert ok.status_code == 200 and ok.json()["body"] == "y" * BODY_LIMIT


async def test_a_streamed_body_over_the_limit_is_cut_and_refused(provider: LocalProvider, at: At) -> None:
    await deploy_echo(provider, P1)
    echo = at(f"echo.{P1}.nno.localhost")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"z" * 1024

    resp = await echo.post("/upload", content=chunks())  # no length: chunked
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "worker" not in resp.json()  # the echo Worker's answer to a cut body was never heard

    async def small() -> AsyncIterator[bytes]:
        yield b"a" * 100
        yield b"b" * 100

    ok = await echo.post("/upload", content=small())
    assert ok.status_code == 200 and ok.json()["body"] == "a" * 100 + "b" * 100


async def test_a_platforms_auth_worker_refuses_a_huge_sign_up(provider: LocalProvider, at: At) -> None:
    await deploy_auth(provider, P1)
    auth = at(f"auth.{P1}.nno.localhost")
    body: dict[str, Any] = {"name": "x" * (BODY_LIMIT * 4), "email": "big@example.com", "password": "correct-horse-9"}
    resp = await auth.post("/api/auth/sign-up/email", json=body)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    body["name"] = "Big"
    # (A trailing slash reaches the same route on a platform's auth app: no redirect.)
    assert (await auth.post("/api/auth/sign-up/email/", json=body)).status_code == 200


async def test_a_platforms_auth_worker_throttles_failed_sign_ins(provider: LocalProvider, at: At) -> None:
    await deploy_auth(provider, P1)
    auth = at(f"auth.svc.default.{P1}.nno.localhost")
    user = {"name": "Ada", "email": "ada@example.com", "password": "correct-horse-9"}
    assert (await auth.post("/api/auth/sign-up/email", json=user)).status_code == 200
    wrong = {"email": user["email"], "password": "not-the-password-1"}
    statuses = [(await auth.post("/api/auth/sign-in/email", json=wrong)).status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = await auth.post("/api/auth/sign-in/email", json={"email": user["email"], "password": user["password"]})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
    assert int(locked.headers["retry-after"]) >= 1
