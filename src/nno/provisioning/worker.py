"""The worker loop: N slots, each claiming and running one job at a time, polling the job table.

Embedded mode runs one inside `nno serve` (started by the service's startup hook, woken at once when
a job is submitted in-process); scaled mode runs `nno worker` processes against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import structlog
from sqlalchemy import update

from nno.kernel.dbfaults import LoopFailures
from nno.kernel.ids import new_id
from nno.kernel.service import ServiceContext
from nno.provisioning.engine import Engine
from nno.provisioning.models import ProvisionJob

log = structlog.get_logger("nno.provisioning.worker")

WAKEUP_KEY = "provisioning.wakeup"


def worker_identity() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{new_id(6)}"


class JobWorker:
    def __init__(self, ctx: ServiceContext, *, concurrency: int | None = None,
                 worker_id: str | None = None) -> None:
        self.ctx = ctx
        self.worker_id = worker_id or worker_identity()
        self.engine = Engine(ctx, self.worker_id)
        self.concurrency = concurrency or ctx.settings.worker_concurrency
        self.wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        self.ctx.extras[WAKEUP_KEY] = self.wakeup
        self._tasks = [asyncio.create_task(self._slot(i), name=f"nno-job-slot-{i}")
                       for i in range(self.concurrency)]
        log.info("worker_started", worker=self.worker_id, slots=self.concurrency)

    async def _slot(self, index: int) -> None:
        poll = self.ctx.settings.worker_poll_interval_s
        failures = LoopFailures(log, "worker_slot_failed", worker=self.worker_id, slot=index)
        while not self._stopping:
            try:
                ran = await self.engine.run_one()
                failures.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database blinked; keep the loop alive
                failures.failed(exc)
                ran = False
            if ran:
                self.wakeup.set()  # a finished job may have made room for the others
                continue
            self.wakeup.clear()
            # Only the first slot polls at the configured pace; the others wake when work appears
            # (or, as a safety net, now and then), so an idle worker costs one small query a tick.
            timeout = poll if index == 0 else poll * 20
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=timeout)

    async def stop(self) -> None:
        """Stop the slots; jobs interrupted here are released for another worker at once."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.ctx.extras.get(WAKEUP_KEY) is self.wakeup:
            self.ctx.extras.pop(WAKEUP_KEY, None)
        try:
            async with self.ctx.db.session() as s:
                await s.execute(update(ProvisionJob).where(ProvisionJob.lease_owner == self.worker_id)
                                .values(lease_expires_at=0))
        except Exception:
            log.exception("worker_release_failed", worker=self.worker_id)
        log.info("worker_stopped", worker=self.worker_id)

    async def run_until_idle(self, timeout_s: float = 30.0) -> None:
        """Run jobs in this task until none is claimable (tests and one-shot runs)."""
        async with asyncio.timeout(timeout_s):
            while await self.engine.run_one():
                pass


def wake(ctx: ServiceContext) -> None:
    event = ctx.extras.get(WAKEUP_KEY)
    if isinstance(event, asyncio.Event):
        event.set()
