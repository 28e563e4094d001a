"""Slows down password guessing: failed sign-ins are counted per email and per client address in a
15-minute window; past the threshold the key is locked with exponential backoff (30 s doubling, at
most 15 min) and every attempt, right password or not, gets 429 with Retry-After. Keyed by the email
string whether or not an account exists, so the answer never tells which emails are registered."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from nno.iam.models import AuthThrottle
from nno.kernel.clock import now_ms
from nno.kernel.db import Database
from nno.kernel.errors import NNOError

WINDOW_MS = 15 * 60 * 1000
EMAIL_THRESHOLD = 5
IP_THRESHOLD = 30
BASE_LOCK_MS = 30_000
MAX_LOCK_MS = 15 * 60 * 1000


def keys_for(email: str, ip: str | None) -> list[tuple[str, int]]:
    keys = [(f"email:{email}", EMAIL_THRESHOLD)]
    if ip:
        keys.append((f"ip:{ip}", IP_THRESHOLD))
    return keys


async def check_locked(db: Database, keys: list[tuple[str, int]]) -> None:
    now = now_ms()
    async with db.session() as s:
        rows = (await s.execute(select(AuthThrottle).where(AuthThrottle.key.in_([k for k, _ in keys])))
                ).scalars().all()
    wait_ms = max((r.locked_until - now for r in rows), default=0)
    if wait_ms > 0:
        retry = max(1, -(-wait_ms // 1000))
        raise NNOError(429, "TOO_MANY_ATTEMPTS", "Too many failed sign-in attempts; try again later",
                       {"retryAfter": retry}, headers={"Retry-After": str(retry)})


async def record_failure(db: Database, keys: list[tuple[str, int]]) -> None:
    try:
        await _record_failure(db, keys)
    except IntegrityError:  # a concurrent first failure inserted the row: count again on top of it
        await _record_failure(db, keys)


async def _record_failure(db: Database, keys: list[tuple[str, int]]) -> None:
    now = now_ms()
    async with db.session() as s:
        for key, threshold in keys:
            row = await s.get(AuthThrottle, key, with_for_update=not db.is_sqlite)
            if row is None:
                row = AuthThrottle(key=key, failures=0, window_start=now, locked_until=0)
                s.add(row)
            elif now - row.window_start > WINDOW_MS and row.locked_until <= now:
                row.failures, row.window_start = 0, now
            row.failures += 1
            if row.failures >= threshold:
                row.locked_until = now + min(BASE_LOCK_MS * 2 ** (row.failures - threshold), MAX_LOCK_MS)


async def clear(db: Database, email: str) -> None:
    async with db.session() as s:
        await s.execute(delete(AuthThrottle).where(AuthThrottle.key == f"email:{email}"))
