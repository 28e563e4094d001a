"""Edge fixtures: a test Worker kind (`echo`) that shows what a Worker receives and uses its
bindings, the `local` provider the job worker would use, and clients addressed by Host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nno.core import Core
from nno.edge.workers import WorkerEnv, register_worker_kind
from nno.kernel.config import Settings
from nno.provisioning.providers.local import LocalProvider

P1, P2 = "k3m9p2xw7q", "a1b2c3d4e5"
built: list[str] = []  # names of echo instances built, in order


def echo_app(env: WorkerEnv) -> Starlette:
    built.append(env.name)

    async def echo(request: Request) -> Response:
        return JSONResponse({
            "worker": env.name, "platformId": env.platform_id, "host": request.headers.get("host"),
            "path": request.url.path, "query": request.url.query,
            "headers": {k: v for k, v in request.headers.items()},
            "secretNames": sorted(env.secrets), "body": (await request.body()).decode(),
        })

    async def secret_matches(request: Request) -> Response:
        return JSONResponse({"match": env.secrets.get(request.path_params["key"]) == request.query_params["v"]})

    async def kv(request: Request) -> Response:
        client = env.kv["CACHE"]
        key = request.path_params["key"]
        if request.method == "PUT":
            await client.put(key, await request.body())
            return JSONResponse({"ok": True})
        value = await client.get(key)
        return JSONResponse({"value": value.decode() if value is not None else None})

    async def r2(request: Request) -> Response:
        bucket = env.r2["FILES"]
        key = request.path_params["key"]
        if request.method == "PUT":
            await bucket.put(key, await request.body())
            return JSONResponse({"ok": True})
        data = await bucket.get(key)
        return JSONResponse({"value": data.decode() if data is not None else None})

    async def d1(_: Request) -> Response:
        async with env.d1["DB"].session() as s:
            await s.execute(text("CREATE TABLE IF NOT EXISTS hits (n INTEGER)"))
            await s.execute(text("INSERT INTO hits VALUES (1)"))
            count = (await s.execute(text("SELECT count(*) FROM hits"))).scalar_one()
        return JSONResponse({"hits": count})

    return Starlette(routes=[
        Route("/secret/{key}", secret_matches), Route("/kv/{key}", kv, methods=["GET", "PUT"]),
        Route("/r2/{key:path}", r2, methods=["GET", "PUT"]), Route("/d1", d1),
        Route("/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE"]),
    ])


@pytest.fixture(autouse=True)
def echo_kind() -> Iterator[None]:
    built.clear()
    unregister = register_worker_kind("echo", echo_app)
    try:
        yield
    finally:
        unregister()


@pytest.fixture
async def provider(core: Core, settings: Settings) -> AsyncIterator[LocalProvider]:
    """The provider as the provisioning job worker holds it: its own handle on the cloud's state."""
    p = LocalProvider(settings)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def at(core: Core) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """`at(host)`: an HTTP client on the core whose requests carry that Host."""
    clients: list[httpx.AsyncClient] = []

    def make(host: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=f"http://{host}:8787")
        clients.append(c)
        return c

    try:
        yield make
    finally:
        for c in clients:
            await c.aclose()


async def deploy_echo(provider: LocalProvider, pid: str, **extra: Any) -> str:
    name = f"{pid}-default-echo"
    await provider.ensure_d1(f"{name}-db")
    await provider.ensure_kv(f"{name}-kv")
    await provider.ensure_r2(f"{name}-storage")
    await provider.ensure_worker(name, kind="echo", platform_id=pid, bindings={
        "DB": f"{name}-db", "CACHE": f"{name}-kv", "FILES": f"{name}-storage", **extra})
    await provider.ensure_dns(f"echo.svc.default.{pid}.nno.localhost", target=name, platform_id=pid)
    return name


class EchoFeature:
    """What a feature package's `nno.features` entry point may load: an object offering its backend."""

    create_worker_app = staticmethod(echo_app)
