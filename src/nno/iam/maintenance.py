"""Housekeeping: expired sessions, used or expired one-time tokens, finished device codes and stale
throttle counters are deleted periodically (they refuse access anyway; this keeps tables small)."""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import delete, or_

from nno.iam.models import AuthThrottle, DeviceCode, Session, Verification
from nno.iam.throttle import WINDOW_MS
from nno.kernel.aio import stop_task
from nno.kernel.clock import now_ms
from nno.kernel.db import Database
from nno.kernel.dbfaults import LoopFailures

log = structlog.get_logger("nno.iam.maintenance")

GRACE_MS = 24 * 3600 * 1000  # keep finished one-time records a day, for support questions
PURGE_INTERVAL_S = 600.0


async def purge_expired(db: Database, now: int | None = None) -> dict[str, int]:
    now = now if now is not None else now_ms()
    counts: dict[str, int] = {}
    async with db.session() as s:
        statements = {
            "sessions": delete(Session).where(Session.expires_at <= now),
            "verifications": delete(Verification).where(
                or_(Verification.expires_at <= now - GRACE_MS, Verification.used_at <= now - GRACE_MS)),
            "device_codes": delete(DeviceCode).where(DeviceCode.expires_at <= now - GRACE_MS),
            "auth_throttle": delete(AuthThrottle).where(
                AuthThrottle.locked_until <= now, AuthThrottle.window_start <= now - WINDOW_MS),
        }
        for name, stmt in statements.items():
            result = await s.execute(stmt)
            counts[name] = int(getattr(result, "rowcount", 0) or 0)
    return counts


class Purger:
    """A background loop started and stopped with the service."""

    def __init__(self, db: Database, interval_s: float = PURGE_INTERVAL_S) -> None:
        self.db = db
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="iam-purge")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        failures = LoopFailures(log, "iam_purge_failed")
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                counts = await self.purge_once()
            except Exception as exc:  # never let housekeeping die; try again next round
                failures.failed(exc)
                continue
            failures.succeeded()
            if any(counts.values()):
                log.info("iam_purged", **counts)

    async def purge_once(self) -> dict[str, int]:
        return await purge_expired(self.db)
