"""A small bounded in-process cache with per-entry TTLs, plus single-flight loading so a burst of
requests with the same uncached credential makes one upstream call, not N."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, max_size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.clock = clock
        self._data: dict[Hashable, tuple[float, V]] = {}
        self._inflight: dict[Hashable, asyncio.Future[tuple[V, float]]] = {}

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> V | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self.clock():
            self._data.pop(key, None)
            return None
        return item[1]

    def set(self, key: Hashable, value: V, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        if key not in self._data and len(self._data) >= self.max_size:
            self._evict()
        self._data[key] = (self.clock() + ttl_s, value)

    def delete(self, key: Hashable) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def _evict(self) -> None:
        now = self.clock()
        for key in [k for k, (expires, _) in self._data.items() if expires <= now]:
            del self._data[key]
        # Still full of live entries: drop the oldest inserted tenth.
        if len(self._data) >= self.max_size:
            for key in list(self._data)[: max(1, self.max_size // 10)]:
                del self._data[key]

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[tuple[V, float]]]) -> V:
        """The cached value, or the result of `load()` -> (value, ttl_s), shared by concurrent callers.
        If `load` raises, nothing is cached and every waiting caller gets the exception."""
        value = self.get(key)
        if value is not None:
            return value
        pending = self._inflight.get(key)
        if pending is not None:
            return (await asyncio.shield(pending))[0]
        future: asyncio.Future[tuple[V, float]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await load()
        except BaseException as exc:
            # A cancelled loader (client gone) must not cancel the other waiters' tasks.
            shared = exc if isinstance(exc, Exception) else RuntimeError("load aborted")
            future.set_exception(shared)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        finally:
            self._inflight.pop(key, None)
        self.set(key, result[0], result[1])
        future.set_result(result)
        return result[0]
