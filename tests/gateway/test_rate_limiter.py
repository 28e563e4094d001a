"""rateLimiter + kernel/ratelimit: `{ip}:{path}` keys, sliding window, 429 with Retry-After, Redis
shared across instances, fail open to memory when Redis is down."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from nno.kernel.kv import redis_client
from nno.kernel.ratelimit import MemoryRateLimiter, RedisRateLimiter, decide
from tests.conftest import BACKEND, REDIS_URL, clear_redis_prefix
from tests.gateway.conftest import Harness, asgi_request

scaled_only = pytest.mark.skipif(BACKEND != "scaled", reason="needs the real Redis (scaled backend)")


def test_sliding_window_counts_the_previous_window_tail() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(10, 60, clock=lambda: now[0])
    assert all(limiter.hit_sync("k").allowed for _ in range(10))
    refused = limiter.hit_sync("k")
    assert not refused.allowed and refused.retry_after_s > 0
    now[0] = 60 + 30  # halfway through the next window: half of the previous 10 still count
    allowed = [limiter.hit_sync("k").allowed for _ in range(10)]
    assert allowed.count(True) == 5
    now[0] = 60 * 3  # two windows later nothing counts
    assert all(limiter.hit_sync("k").allowed for _ in range(10))


def test_keys_are_independent() -> None:
    limiter = MemoryRateLimiter(1, 60, clock=lambda: 5.0)
    assert limiter.hit_sync("1.1.1.1:/a").allowed and limiter.hit_sync("1.1.1.1:/b").allowed
    assert limiter.hit_sync("2.2.2.2:/a").allowed
    assert not limiter.hit_sync("1.1.1.1:/a").allowed


def test_retry_after_is_when_a_request_would_pass() -> None:
    now = [10.0]
    limiter = MemoryRateLimiter(3, 60, clock=lambda: now[0])
    for _ in range(3):
        limiter.hit_sync("k")
    wait = limiter.hit_sync("k").retry_after_s
    now[0] += wait - 0.01
    assert not limiter.hit_sync("k").allowed
    now[0] += 0.02
    assert limiter.hit_sync("k").allowed


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 50), st.floats(0.0, 59.999), st.integers(0, 80), st.integers(0, 80))
def test_decide_retry_after_is_exact(limit: int, elapsed: float, cur: int, prev: int) -> None:
    window = 60.0
    d = decide(limit, window, elapsed, cur, prev)
    if d.allowed:
        assert prev * (window - elapsed) / window + cur + 1 <= limit
        return
    t = elapsed + d.retry_after_s + 1e-6  # just after the advertised time
    if t < window:
        assert prev * (window - t) / window + cur + 1 <= limit + 1e-6
    else:
        x = t - window
        assert cur * (window - x) / window + 1 <= limit + 1e-6


def test_memory_limiter_is_bounded() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(5, 1, clock=lambda: now[0], max_keys=100)
    for i in range(500):
        now[0] += 0.01
        limiter.hit_sync(f"ip:{i}")
    assert len(limiter._counts) <= 100


async def test_middleware_429_envelope_with_retry_after(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(rate_limit="3/60s")
    statuses = [(await gw.client.get("/health")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    resp = await gw.client.get("/health")
    assert resp.status_code == 429
    err = resp.json()["error"]
    assert err["code"] == "RATE_LIMITED" and err["requestId"] == resp.headers["x-request-id"]
    assert 1 <= int(resp.headers["retry-after"]) <= 120
    # Another path, or another client address, has its own budget.
    assert (await gw.client.get("/openapi.json")).status_code == 200
    status, _, _ = await asgi_request(gw.gateway, "GET", "/health", client=("198.51.100.1", 1))
    assert status == 200


async def test_x_forwarded_for_is_not_trusted(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(rate_limit="2/60s")
    for i in range(2):
        await gw.client.get("/health", headers={"X-Forwarded-For": f"10.0.0.{i}"})
    assert (await gw.client.get("/health", headers={"X-Forwarded-For": "10.0.0.99"})).status_code == 429


async def test_limited_requests_never_reach_auth(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(rate_limit="1/60s")
    await gw.client.get("/api/v1/provisioning/x", headers={"Authorization": "Bearer t"})
    await gw.client.get("/api/v1/provisioning/x", headers={"Authorization": "Bearer t"})
    assert gw.iam.session_calls == 1


@scaled_only
async def test_gateway_uses_redis_when_scaled(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(rate_limit="2/60s")
    assert isinstance(gw.gateway.limiter, RedisRateLimiter)


@scaled_only
async def test_two_redis_limiters_share_one_limit() -> None:
    prefix = f"nnotest:rl:{uuid.uuid4().hex[:8]}:"
    one_client, two_client = redis_client(REDIS_URL), redis_client(REDIS_URL)
    one = RedisRateLimiter(one_client, prefix, 5, 60)
    two = RedisRateLimiter(two_client, prefix, 5, 60)
    try:
        results = []
        for i in range(8):
            limiter = one if i % 2 == 0 else two
            results.append((await limiter.hit("1.2.3.4:/x")).allowed)
        assert results.count(True) == 5 and results[5:] == [False, False, False]
        refused = await two.hit("1.2.3.4:/x")
        assert not refused.allowed and refused.retry_after_s > 0
        assert (await one.hit("1.2.3.4:/y")).allowed
        assert not one.degraded and not two.degraded
    finally:
        await one_client.aclose()
        await two_client.aclose()
        await clear_redis_prefix(prefix)


@scaled_only
async def test_two_gateways_share_one_limit(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    first = await make_gateway(rate_limit="4/60s")
    second = await make_gateway(rate_limit="4/60s")
    statuses = []
    for i in range(6):
        gw = first if i % 2 == 0 else second
        statuses.append((await gw.client.get("/health")).status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_redis_down_fails_open_on_memory_and_logs() -> None:
    client = redis_client(f"redis://127.0.0.1:{_closed_port()}/0")
    limiter = RedisRateLimiter(client, "nnotest:down:", 2, 60)
    try:
        with capture_logs() as logs:
            results = [(await limiter.hit("k")).allowed for _ in range(3)]
        assert results == [True, True, False]  # still limited, per process
        assert limiter.degraded
        warnings = [e for e in logs if e["event"] == "rate_limiter_redis_unavailable"]
        assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    finally:
        await client.aclose()


async def test_gateway_keeps_serving_when_redis_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nno.gateway.app import create_gateway
    from nno.kernel.bindings import Bindings
    from nno.kernel.config import Settings
    from nno.kernel.kv import MemoryKV

    settings = Settings(auth_api_key="k", data_dir=tmp_path, rate_limit="5/60s",
                        redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    gateway = create_gateway(settings, Bindings(), MemoryKV())
    assert isinstance(gateway.limiter, RedisRateLimiter)
    try:
        status, _, body = await asgi_request(gateway, "GET", "/health")
        assert status == 200 and body == b"ok" and gateway.limiter.degraded
    finally:
        await gateway.limiter.client.aclose()
