"""A small key-value store with TTLs: in memory when embedded, Redis when `NNO_REDIS_URL` is set.

Used for the platform status cache (DECISIONS 5) and anything else several processes must share.
"""

from __future__ import annotations

import time
from typing import Protocol

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger("nno.kv")


class KeyValueStore(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryKV:
    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}

    async def get(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        self._data[key] = (value, time.monotonic() + ttl_s if ttl_s else None)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def close(self) -> None:
        self._data.clear()


class RedisKV:
    """Redis-backed store. Keys are namespaced with the installation's prefix."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def get(self, key: str) -> str | None:
        value = await self.client.get(self.prefix + key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        if ttl_s:
            await self.client.set(self.prefix + key, value, px=int(ttl_s * 1000))
        else:
            await self.client.set(self.prefix + key, value)

    async def delete(self, key: str) -> None:
        await self.client.delete(self.prefix + key)

    async def close(self) -> None:
        await self.client.aclose()


def redis_client(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30)
