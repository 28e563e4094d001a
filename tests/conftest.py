"""Shared fixtures: a whole NNO core per test, on the embedded backend (SQLite + in-memory) or the
scaled one (real PostgreSQL + Redis), chosen by NNO_TEST_BACKEND=embedded|scaled.

Every test gets its own data dir, its own PostgreSQL database (created and dropped here) and its
own Redis key prefix, so tests never see each other's data.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from tests import pgscratch

# Test-only feature packages, found through their dist-info like installed ones (nno.features).
sys.path.append(str(Path(__file__).parent / "fixtures" / "features"))

BACKEND = os.environ.get("NNO_TEST_BACKEND", "embedded")
PG_ADMIN_URL = os.environ.get("NNO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("NNO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SERVICE_KEY = "test-service-key-0123456789abcdef"
BASE_URL = "http://127.0.0.1:8787"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "scaled":
        skip = pytest.mark.skip(reason="embedded backend only")
        for item in items:
            if "embedded_only" in item.keywords:
                item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    return f"nno test backend: {BACKEND}"


async def create_pg_database() -> str:
    return await pgscratch.create_db(PG_ADMIN_URL, "nno_test")


async def drop_pg_database(url: str) -> None:
    await pgscratch.drop_db(PG_ADMIN_URL, url)


async def clear_redis_prefix(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def backend_overrides() -> AsyncIterator[dict[str, Any]]:
    """Settings that select the backend under test; cleans up what it created."""
    if BACKEND != "scaled":
        yield {}
        return
    url = await create_pg_database()
    prefix = f"nnotest:{uuid.uuid4().hex[:12]}:"
    try:
        yield {"database_url": url, "redis_url": REDIS_URL, "redis_prefix": prefix}
    finally:
        await drop_pg_database(url)
        await clear_redis_prefix(prefix)


@pytest.fixture
def make_settings(tmp_path: Path, backend_overrides: dict[str, Any]) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "auth_api_key": SERVICE_KEY,
            "data_dir": tmp_path / "data",
            "log_json": True,
            "worker_poll_interval_s": 0.05,
            # Tests read magic and reset links from the mail outbox: the development outbox, asked for
            # explicitly since AUTH_API_KEY is set (`tests/iam/test_mail_secrets.py` tests without it).
            "dev_outbox": True,
        }
        values.update(backend_overrides)
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@asynccontextmanager
async def running_core(settings: Settings) -> AsyncIterator[Core]:
    """The whole core (every service, the embedded worker, the local cloud), started and stopped."""
    instance = Core(settings)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    async with running_core(settings) as instance:
        yield instance


@pytest.fixture
async def client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the gateway (the public surface), with no credentials."""
    transport = httpx.ASGITransport(app=core.asgi)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


@pytest.fixture
def service_headers() -> dict[str, str]:
    """Path 1: the static service key."""
    return {"Authorization": f"Bearer {SERVICE_KEY}"}
