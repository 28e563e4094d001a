"""Billing's scheduler: period ends, payment retries and dunning on every tick; the daily usage
snapshot at 02:00 UTC and the monthly roll-up after the month's last snapshot.

Several processes may run it: a lease row picks one leader at a time (taken over when it lapses),
and each dated job records its slot in `scheduler_runs` in the same transaction as its work, so a
day or a month is done exactly once, also across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from nno.billing import ledger
from nno.billing.models import SchedulerLease, SchedulerRun, UsageEvent
from nno.billing.service import DAY_MS, HOUR_MS, BillingService
from nno.kernel.aio import stop_task
from nno.kernel.clock import now_ms
from nno.kernel.dbfaults import LoopFailures
from nno.kernel.ids import new_id

log = structlog.get_logger("nno.billing.scheduler")

LEASE = "billing"
SNAPSHOT_HOUR = 2
MAX_CATCH_UP_DAYS = 62


def day_start(ms: int) -> int:
    return ms - ms % DAY_MS


def previous_month(ms: int) -> str:
    """The month that ended before the one `ms` falls in."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    first = dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return ledger.month_key(int(first.timestamp() * 1000) - 1)


class Scheduler:
    def __init__(self, service: BillingService) -> None:
        self.service = service
        self.db = service.db
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id(6)}"
        self._task: asyncio.Task[None] | None = None

    async def acquire(self) -> bool:
        """Hold (or take over) the lease; True when this process is the leader for the next tick."""
        now = now_ms()
        expires = now + int(self.service.settings.lease_s * 1000)
        async with self.db.session() as s:
            result = await s.execute(update(SchedulerLease).where(
                SchedulerLease.name == LEASE,
                (SchedulerLease.owner == self.owner) | (SchedulerLease.expires_at < now),
            ).values(owner=self.owner, expires_at=expires))
            if result.rowcount:  # type: ignore[attr-defined]
                return True
        try:
            async with self.db.session() as s:
                s.add(SchedulerLease(name=LEASE, owner=self.owner, expires_at=expires))
        except IntegrityError:
            return False
        return True

    async def release(self) -> None:
        async with self.db.session() as s:
            await s.execute(update(SchedulerLease).where(SchedulerLease.name == LEASE,
                                                         SchedulerLease.owner == self.owner)
                            .values(expires_at=0))

    async def _once(self, job: str, slot: str, work: str) -> bool:
        """Run the dated job `work` for `slot` unless it already ran (claim and work commit together)."""
        try:
            async with self.db.session() as s:
                s.add(SchedulerRun(job=job, slot=slot, ran_at=now_ms()))
                await s.flush()
                if work == "daily":
                    count = await self.service.snapshot_day(s, int(datetime.strptime(slot, "%Y-%m-%d")
                                                                  .replace(tzinfo=UTC).timestamp() * 1000))
                else:
                    count = await self.service.rollup_month(s, slot)
                row = await s.get(SchedulerRun, (job, slot))
                assert row is not None
                row.detail = f"{count} rows"
        except IntegrityError:
            return False
        log.info("billing_job_ran", job=job, slot=slot)
        return True

    async def dated_jobs(self, now: int) -> list[str]:
        ran: list[str] = []
        # The newest day whose snapshot is due: yesterday once it is 02:00 UTC.
        target = day_start(now - SNAPSHOT_HOUR * HOUR_MS) - DAY_MS
        async with self.db.session() as s:
            last = await s.scalar(select(func.max(SchedulerRun.slot)).where(SchedulerRun.job == "daily"))
            earliest = None if last else await s.scalar(select(func.min(UsageEvent.occurred_at)))
        # A fresh install starts from its first usage (at most MAX_CATCH_UP_DAYS back).
        first = target if earliest is None else max(day_start(int(earliest)), target - MAX_CATCH_UP_DAYS * DAY_MS)
        if last:
            last_ms = int(datetime.strptime(last, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)
            first = max(last_ms + DAY_MS, target - MAX_CATCH_UP_DAYS * DAY_MS)
        day = first
        while day <= target:
            if await self._once("daily", ledger.day_key(day), "daily"):
                ran.append(f"daily:{ledger.day_key(day)}")
            day += DAY_MS
        month = previous_month(now - SNAPSHOT_HOUR * HOUR_MS)
        if await self._once("monthly", month, "monthly"):
            ran.append(f"monthly:{month}")
        return ran

    async def tick(self) -> dict[str, object] | None:
        """One round if this process leads; None otherwise."""
        if not await self.acquire():
            return None
        counts = await self.service.run_due()
        ran = await self.dated_jobs(await self.service.now())
        return {**counts, "jobs": ran}

    async def _loop(self) -> None:
        failures = LoopFailures(log, "billing_tick_failed")
        while True:
            try:
                await self.tick()
                failures.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures.failed(exc)
            await asyncio.sleep(self.service.settings.tick_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="billing-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
            with contextlib.suppress(Exception):
                await self.release()
