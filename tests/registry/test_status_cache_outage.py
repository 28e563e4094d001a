"""The status cache is never wrong for long (issue 18): after a Redis outage a platform's status at
the gateway matches the Registry within NNO_STATUS_CACHE_TTL, and while Redis is down the cache
backs off and warns once. A private redis-server behind a TCP proxy this test cuts and restores
(the machine's shared Redis is never touched)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs
from tests.conftest import running_core
from tests.netfaults import PrivateRedis, TcpProxy

from nno.core import Core
from nno.gateway.app import Gateway
from nno.kernel.config import Settings
from nno.kernel.kv import RedisKV

pytestmark = pytest.mark.skipif(not PrivateRedis.available(), reason="needs redis-server")
TTL = 1.0
P = "/api/v1/platforms"


@pytest.fixture
async def redis_proxy() -> AsyncIterator[tuple[PrivateRedis, TcpProxy]]:
    server = PrivateRedis().start()
    proxy = TcpProxy(server.port)
    await proxy.restore()
    try:
        yield server, proxy
    finally:
        await proxy.cut()
        server.stop()


@pytest.fixture
async def core(make_settings: Callable[..., Settings],
               redis_proxy: tuple[PrivateRedis, TcpProxy]) -> AsyncIterator[Core]:
    settings = make_settings(redis_url=redis_proxy[1].url, redis_prefix="outage:", status_cache_ttl_s=TTL)
    async with running_core(settings) as instance:
        yield instance


async def active_platform(client: httpx.AsyncClient, h: dict[str, str]) -> str:
    resp = await client.post(P, json={"name": "Outage", "slug": "outage"}, headers=h)
    assert resp.status_code == 201, resp.text
    pid = str(resp.json()["id"])
    for action in ("bootstrap", "complete"):
        r = await client.post(f"{P}/{pid}/lifecycle", json={"action": action}, headers=h)
        assert r.status_code == 200, r.text
    return pid


async def test_a_status_changed_while_redis_was_down_is_right_at_the_gateway_within_the_ttl(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str],
        redis_proxy: tuple[PrivateRedis, TcpProxy]) -> None:
    server, proxy = redis_proxy
    gateway = core.gateway
    assert isinstance(gateway, Gateway) and isinstance(core.kv, RedisKV)
    pid = await active_platform(client, service_headers)
    direct = aioredis.from_url(server.url)
    try:
        key = f"outage:platform-status:{pid}"
        assert await direct.get(key) == b"active"
        assert 0 < await direct.pttl(key) <= TTL * 1000  # every entry expires
        assert await gateway.statuses.status(pid) == "active"

        await proxy.cut()
        with capture_logs() as logs:
            r = await client.post(f"{P}/{pid}/lifecycle", json={"action": "suspend"}, headers=service_headers)
            assert r.status_code == 200, r.text  # the Registry does not need the cache to change a status
            seen = [await gateway.statuses.status(pid) for _ in range(200)]
        assert set(seen) == {"suspended"}  # Redis unreachable: the gateway asks the Registry
        # (The rate limiter has its own Redis client and its own single warning.)
        warnings = [e for e in logs if e["log_level"] in ("warning", "error")
                    and not e["event"].startswith("rate_limiter")]
        assert [e["event"] for e in warnings] == ["kv_unavailable"], warnings  # one warning per outage
        assert core.kv.failures <= 3  # backed off: not one Redis attempt per lookup
        assert await direct.get(key) == b"active"  # what Redis still holds is stale...

        await proxy.restore()
        started = time.monotonic()
        while await gateway.statuses.status(pid) != "suspended" or await direct.get(key) != b"suspended":
            assert time.monotonic() - started < TTL, "the gateway was still wrong after the TTL"
            await asyncio.sleep(0.02)
        assert 0 < await direct.pttl(key) <= TTL * 1000  # ...until the Registry re-published it
    finally:
        await direct.aclose()


async def test_statuses_never_written_are_published_once_redis_is_back(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str],
        redis_proxy: tuple[PrivateRedis, TcpProxy]) -> None:
    """A platform made and moved through three states while Redis was unreachable: the republisher
    writes what the database holds now, once."""
    server, proxy = redis_proxy
    await proxy.cut()
    pid = await active_platform(client, service_headers)
    r = await client.post(f"{P}/{pid}/lifecycle", json={"action": "suspend"}, headers=service_headers)
    assert r.status_code == 200
    await proxy.restore()
    direct = aioredis.from_url(server.url)
    try:
        started = time.monotonic()
        while await direct.get(f"outage:platform-status:{pid}") != b"suspended":
            assert time.monotonic() - started < TTL
            await asyncio.sleep(0.02)
    finally:
        await direct.aclose()
