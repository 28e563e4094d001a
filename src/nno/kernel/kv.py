"""A small key-value store with TTLs: in memory when embedded, Redis when `NNO_REDIS_URL` is set.

Used for the platform status cache (DECISIONS 5) and anything else several processes must share.
It is a cache: when Redis cannot be reached a read is a miss, and a write raises `KVUnavailable` so
the writer can try again later (the Registry re-publishes statuses it could not write).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger("nno.kv")
T = TypeVar("T")


class KVUnavailable(Exception):
    """The shared store cannot be reached (now, or recently enough that it is not asked again yet)."""


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
    """Redis-backed store. Keys are namespaced with the installation's prefix.

    A circuit breaker: after a connection failure Redis is not asked again for a back-off that
    doubles per failed probe (`backoff_min_s` .. `backoff_max_s`), so an outage costs one timeout per
    back-off rather than one per request; one warning when an outage starts, one line when it ends.
    """

    def __init__(self, client: aioredis.Redis, prefix: str, *, backoff_min_s: float = 0.25,
                 backoff_max_s: float = 5.0) -> None:
        self.client = client
        self.prefix = prefix
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._down_since: float | None = None
        self.failures = 0  # calls that reached Redis and failed (for tests and benches)

    @property
    def available(self) -> bool:
        return self._down_since is None

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        if self._down_since is not None and now < self._retry_at:
            raise KVUnavailable("redis unavailable (backing off)")
        try:
            result = await op()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self.failures += 1
            self._backoff_s = min(max(self._backoff_s * 2, self.backoff_min_s), self.backoff_max_s)
            self._retry_at = time.monotonic() + self._backoff_s
            if self._down_since is None:
                self._down_since = now
                log.warning("kv_unavailable", error=f"{exc.__class__.__name__}: {exc}",
                            retry_in_s=self._backoff_s)
            raise KVUnavailable(str(exc)) from exc
        if self._down_since is not None:
            log.info("kv_recovered", down_for_s=round(time.monotonic() - self._down_since, 3))
            self._down_since, self._backoff_s = None, 0.0
        return result

    async def get(self, key: str) -> str | None:
        try:
            value = await self._call(lambda: self.client.get(self.prefix + key))
        except KVUnavailable:
            return None  # a cache miss: the caller asks the source of truth
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        if ttl_s:
            await self._call(lambda: self.client.set(self.prefix + key, value, px=max(int(ttl_s * 1000), 1)))
        else:
            await self._call(lambda: self.client.set(self.prefix + key, value))

    async def delete(self, key: str) -> None:
        await self._call(lambda: self.client.delete(self.prefix + key))

    async def close(self) -> None:
        await self.client.aclose()


def redis_client(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30)
