"""Sliding-window-counter rate limiting (DECISIONS 7): in memory when embedded, one atomic Redis
script per request when scaled out, so every gateway process shares one limit.

The sliding window counter keeps two counts per key: the current fixed window's and the previous
one's. A request is allowed when `prev * (1 - elapsed / window) + cur + 1 <= limit`, which smooths
the burst a plain fixed window allows at its boundary while costing O(1) memory per key.

If Redis stops answering, the Redis limiter keeps serving on an in-memory limiter (fail open: a
rate limiter must not take the API down) and logs it; it retries Redis after a short pause.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import structlog

from nno.kernel.config import Settings
from nno.kernel.kv import KeyValueStore, RedisKV, redis_client

log = structlog.get_logger("nno.ratelimit")


class RateDecision(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    # Seconds until a request with this key would be allowed again (0 when allowed).
    retry_after_s: float


class RateLimiter(Protocol):
    async def hit(self, key: str) -> RateDecision: ...

    async def close(self) -> None: ...


def decide(limit: int, window_s: float, elapsed_s: float, cur: int, prev: int) -> RateDecision:
    """The sliding-window decision for a request arriving `elapsed_s` into the current window,
    given the counts of the current and previous windows *before* this request."""
    weight = (window_s - elapsed_s) / window_s
    estimate = prev * weight + cur
    if estimate + 1 <= limit:
        remaining = max(0, math.floor(limit - (estimate + 1)))
        return RateDecision(True, limit, remaining, 0.0)
    if cur + 1 <= limit:
        # Only the previous window's tail is in the way: wait until enough of it has slid out.
        # prev * (1 - (elapsed + t) / W) + cur + 1 <= limit.
        wait = window_s * (1 - (limit - cur - 1) / prev) - elapsed_s if prev else 0.0
    else:
        # The current window alone is full: wait for the next one, in which `cur` becomes the
        # previous window's count and must slide out far enough: cur * (1 - x / W) + 1 <= limit.
        wait = (window_s - elapsed_s) + window_s * (1 - (limit - 1) / cur)
    return RateDecision(False, limit, 0, max(wait, 0.001))


class MemoryRateLimiter:
    """Per-process limiter. `clock` is injectable for tests."""

    def __init__(
        self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        # key -> [window index, current count, previous count]
        self._counts: dict[str, list[int]] = {}

    def hit_sync(self, key: str) -> RateDecision:
        return self._hit(key, self.clock())

    def _hit(self, key: str, now: float) -> RateDecision:
        idx = int(now // self.window_s)
        elapsed = now - idx * self.window_s
        entry = self._counts.get(key)
        if entry is None:
            if len(self._counts) >= self.max_keys:
                self._prune(idx)
            entry = self._counts[key] = [idx, 0, 0]
        elif entry[0] != idx:
            entry[2] = entry[1] if entry[0] == idx - 1 else 0
            entry[1] = 0
            entry[0] = idx
        decision = decide(self.limit, self.window_s, elapsed, entry[1], entry[2])
        if decision.allowed:
            entry[1] += 1
        return decision

    async def hit(self, key: str) -> RateDecision:
        return self.hit_sync(key)

    def refusal(self, key: str) -> RateDecision | None:
        """`hit_sync` for callers that only need refusals: None when allowed (counted), without
        building a decision. The gateway's per-request path."""
        now = self.clock()
        window_s = self.window_s
        idx = int(now // window_s)
        entry = self._counts.get(key)
        if entry is not None and entry[0] == idx:
            cur, prev = entry[1], entry[2]
            if prev * ((window_s - (now - idx * window_s)) / window_s) + cur + 1 <= self.limit:
                entry[1] = cur + 1
                return None
        decision = self._hit(key, now)  # a new key or window, or a refusal: the general path
        return None if decision.allowed else decision

    def _prune(self, idx: int) -> None:
        # Entries older than the previous window no longer influence any decision.
        stale = [k for k, e in self._counts.items() if e[0] < idx - 1]
        for k in stale:
            del self._counts[k]
        if len(self._counts) >= self.max_keys:  # still full of live keys: drop the oldest half
            for k in list(self._counts)[: self.max_keys // 2]:
                del self._counts[k]

    async def close(self) -> None:
        self._counts.clear()


# One hash per key: w = window index, c = current count, p = previous count. Time comes from the
# Redis server so processes with skewed clocks still agree. Returns {allowed, cur, prev, elapsed_ms}.
_SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local idx = math.floor(now / window)
local elapsed = now - idx * window
local vals = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w = tonumber(vals[1])
local cur = tonumber(vals[2]) or 0
local prev = tonumber(vals[3]) or 0
if w == nil or w < idx - 1 then
  cur = 0
  prev = 0
elseif w == idx - 1 then
  prev = cur
  cur = 0
end
if prev * (window - elapsed) / window + cur + 1 > limit then
  return {0, cur, prev, elapsed}
end
redis.call('HSET', KEYS[1], 'w', idx, 'c', cur + 1, 'p', prev)
redis.call('PEXPIRE', KEYS[1], window * 2)
return {1, cur, prev, elapsed}
"""


class RedisRateLimiter:
    """Shared limiter: one EVALSHA per request. Falls back to `fallback` while Redis is down."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        limit: int,
        window_s: float,
        *,
        fallback: MemoryRateLimiter | None = None,
        retry_after_failure_s: float = 5.0,
    ) -> None:
        self.client = client
        self.prefix = prefix + "rl:"
        self.limit = limit
        self.window_s = window_s
        self._window_ms = max(1, int(window_s * 1000))
        self._script = client.register_script(_SLIDING_WINDOW_LUA)
        self.fallback = fallback or MemoryRateLimiter(limit, window_s)
        self.retry_after_failure_s = retry_after_failure_s
        self._down_until = 0.0
        self.degraded = False

    async def hit(self, key: str) -> RateDecision:
        if self.degraded and time.monotonic() < self._down_until:
            return self.fallback.hit_sync(key)
        try:
            allowed, cur, prev, elapsed_ms = await self._script(
                keys=[self.prefix + key], args=[self.limit, self._window_ms]
            )
        except Exception as exc:  # any Redis/connection failure: fail open on memory
            if not self.degraded:
                log.warning(
                    "rate_limiter_redis_unavailable",
                    error=f"{exc.__class__.__name__}: {exc}",
                    fallback="memory",
                    message="Redis is unreachable; rate limiting continues per process in memory",
                )
            self.degraded = True
            self._down_until = time.monotonic() + self.retry_after_failure_s
            return self.fallback.hit_sync(key)
        if self.degraded:
            self.degraded = False
            log.info("rate_limiter_redis_recovered")
        decision = decide(self.limit, self.window_s, int(elapsed_ms) / 1000, int(cur), int(prev))
        if bool(int(allowed)) != decision.allowed:
            # Integer rounding at the edge: trust Redis's atomic answer.
            return RateDecision(bool(int(allowed)), self.limit, 0, 0.0 if int(allowed) else 1.0)
        return decision

    async def close(self) -> None:
        await self.fallback.close()


def create_rate_limiter(limit: int, window_s: float, *, redis: Any = None, prefix: str = "nno:") -> RateLimiter:
    """The limiter for this deployment: Redis-backed when a client is given, in memory otherwise."""
    if redis is not None:
        return RedisRateLimiter(redis, prefix, limit, window_s)
    return MemoryRateLimiter(limit, window_s)


def limiter_for(settings: Settings, kv: KeyValueStore) -> RateLimiter:
    """The limiter `NNO_RATE_LIMIT` asks for, on the deployment's Redis when there is one (sharing the
    KV store's connection pool when that is Redis too). The gateway and the edge each hold one."""
    limit, window_s = settings.rate_limit_parsed
    redis = None
    if settings.redis_url:
        redis = kv.client if isinstance(kv, RedisKV) else redis_client(settings.redis_url)
    return create_rate_limiter(limit, window_s, redis=redis, prefix=settings.redis_prefix)


def retry_after_seconds(decision: RateDecision) -> int:
    """A refusal's `Retry-After`, in whole seconds (at least 1)."""
    return max(1, math.ceil(decision.retry_after_s))


def route_key(path: str) -> str:
    """The part of a rate-limit key that names what a request reaches: every alias of one route
    gives the same key, so no alias opens a budget of its own.

    `path` is the decoded ASGI path (percent-encoded unreserved characters are already plain).
    Runs of slashes count as one, trailing slashes and `.` segments as none, `..` drops the
    segment before it, and case is folded (routing is case-sensitive, but lookups behind a path,
    such as an email, may not be): distinct routes may share a budget, one route never has two."""
    if "//" in path or "/." in path or (path[-1:] == "/" and len(path) > 1):
        segments: list[str] = []
        for segment in path.split("/"):
            if segment == "..":
                if segments:
                    segments.pop()
            elif segment and segment != ".":
                segments.append(segment)
        path = "/" + "/".join(segments)
    return path.lower()
