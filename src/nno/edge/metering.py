"""Counting Worker invocations for Billing (billing-cli-shell.md §2.4: every platform Worker writes a
data point on every request). The edge router calls `count(worker)` once per dispatch: one dict
increment on the request path. A background task flushes the counts to Billing in batches as usage
events (`POST /usage/events`, as a service); a batch Billing did not acknowledge is sent again with
the same event ids, so a retry after a timeout never counts twice.

`instrument(env)` also counts what a Worker does with its bindings: D1 rows written (the row count of
every INSERT/UPDATE/DELETE) and rows read (the rows a statement returns, including RETURNING; neither
SQLite nor PostgreSQL reports the rows a query scanned without running it again under EXPLAIN), KV
reads (get, list) and writes (put, delete), and R2 operations, on both backends.

Counts are kept per platform and per stack (the second segment of a Worker's name, DECISIONS 11)
and reported with the event's `stackId`; Billing maps each stack to the Registry tenant it belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import event, select

from nno.edge.models import R2Bucket
from nno.kernel.aio import stop_task
from nno.kernel.bindings import Bindings, UpstreamError
from nno.kernel.clock import now_ms
from nno.kernel.dbfaults import LoopFailures
from nno.kernel.identity import SERVICE_IDENTITY

log = structlog.get_logger("nno.edge.metering")

FLUSH_INTERVAL_S = 5.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
MAX_BATCH = 5_000
R2_STORAGE_INTERVAL_S = 3600.0  # R2 storage is billed on the period's highest reading


def rows_returned(cursor: Any) -> int:
    """How many rows a statement returned, read before the caller fetches any. Both async drivers'
    SQLAlchemy cursors (aiosqlite, asyncpg) fetch a result whole into `_rows` as they execute;
    `tests/edge/test_metering.py` checks it stays so on both backends."""
    if cursor.description is None:
        return 0
    rows = getattr(cursor, "_rows", None)
    return len(rows) if rows is not None else max(cursor.rowcount or 0, 0)


class WorkerMeter:
    def __init__(self, bindings: Bindings, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.bindings = bindings
        self.interval_s = interval_s
        self.counts: dict[tuple[str, str, str], int] = {}
        self._unsent: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def count(self, worker: Any) -> None:
        """The per-request hook: one dictionary increment."""
        key = (worker.platform_id, worker.name, "worker_invocations")
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def add(self, platform_id: str, worker: str, metric: str, quantity: int) -> None:
        key = (platform_id, worker, metric)
        self.counts[key] = self.counts.get(key, 0) + quantity

    def instrument(self, env: Any) -> None:
        """Count the D1, KV and R2 use of one Worker instance (its `WorkerEnv`)."""
        platform_id, name = env.platform_id, env.name

        def on_execute(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                       executemany: bool) -> None:
            verb = statement.lstrip()[:7].upper()
            if verb.startswith(_WRITES):
                written = cursor.rowcount
                if executemany and (written is None or written < 0):
                    # asyncpg reports no row count for a batch: one row per parameter set.
                    written = len(params) if isinstance(params, (list, tuple)) else 0
                if written and written > 0:
                    self.add(platform_id, name, "d1_rows_written", written)
            read = rows_returned(cursor)
            if read:
                self.add(platform_id, name, "d1_rows_read", read)

        for db in env.d1.values():
            event.listen(db.engine.sync_engine, "after_cursor_execute", on_execute)
        for kv in env.kv.values():
            for method, metric in (("get", "kv_reads"), ("list", "kv_reads"), ("put", "kv_writes"),
                                   ("delete", "kv_writes")):
                setattr(kv, method, self._counted(getattr(kv, method), platform_id, name, metric))
        for r2 in env.r2.values():
            for method in ("get", "put", "delete", "list"):
                setattr(r2, method, self._counted(getattr(r2, method), platform_id, name, "r2_operations"))

    def _counted(self, call: Callable[..., Awaitable[Any]], platform_id: str, name: str,
                 metric: str) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(call)
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.add(platform_id, name, metric, 1)
            return await call(*args, **kwargs)

        return counted

    def queue(self, events: list[dict[str, Any]]) -> None:
        """Usage events measured elsewhere (R2 storage readings), sent with the next flush."""
        self._unsent.extend(events)

    async def flush(self) -> int:
        """Send what was counted since the last flush; returns how many events Billing took."""
        async with self._lock:
            counts, self.counts = self.counts, {}
            now = now_ms()
            for (platform_id, name, metric), qty in counts.items():
                parts = name.split("-")
                self._unsent.append({"id": f"edge-{uuid.uuid4().hex}", "platformId": platform_id,
                                     "stackId": parts[1] if len(parts) > 2 else None,
                                     "metric": metric, "quantity": qty, "timestamp": now})
            billing = self.bindings.get("billing")
            if billing is None or not self._unsent:
                self._unsent.clear()  # no Billing in this installation: nothing to report to
                return 0
            sent = 0
            while self._unsent:
                batch = self._unsent[:MAX_BATCH]
                try:
                    resp = await billing.request("POST", "/usage/events", json={"events": batch},
                                                 headers=SERVICE_IDENTITY.to_headers())
                except UpstreamError as exc:
                    log.warning("metering_flush_failed", error=str(exc), pending=len(self._unsent))
                    return sent
                if not resp.ok:
                    log.warning("metering_flush_refused", status=resp.status, pending=len(self._unsent))
                    if resp.status < 500:
                        del self._unsent[:MAX_BATCH]  # a batch Billing refuses will not improve
                        continue
                    return sent
                del self._unsent[:MAX_BATCH]
                sent += len(batch)
            return sent

    async def _loop(self) -> None:
        failures = LoopFailures(log, "metering_flush_failed")
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        with contextlib.suppress(Exception):
            await self.flush()


class R2StorageMeter:
    """R2 storage, a gauge: every `interval_s` the bytes each bucket of the local cloud holds, summed
    per platform and stack (the second segment of a bucket's name) and queued on the WorkerMeter as
    `r2_storage_bytes` readings. Billing keeps each tenant's highest reading of the period, so a
    reading repeated (several processes measuring one shared directory) never counts twice."""

    def __init__(self, meter: WorkerMeter, cloud: Any, interval_s: float = R2_STORAGE_INTERVAL_S) -> None:
        self.meter = meter
        self.cloud = cloud  # nno.edge.cloud.LocalCloud
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def measure(self) -> int:
        """Take one reading of every bucket; returns how many readings were queued."""
        async with self.cloud.db.session() as s:
            buckets = (await s.execute(select(R2Bucket.name, R2Bucket.platform_id))).tuples().all()
        totals: dict[tuple[str, str | None], int] = {}
        for name, platform_id in buckets:
            parts = name.split("-")
            key = (platform_id, parts[1] if len(parts) > 2 else None)
            totals[key] = totals.get(key, 0) + await self.cloud.r2_size(name)
        now = now_ms()
        self.meter.queue([{"id": f"edge-r2s-{uuid.uuid4().hex}", "platformId": platform_id, "stackId": stack,
                           "metric": "r2_storage_bytes", "quantity": size, "timestamp": now}
                          for (platform_id, stack), size in totals.items()])
        return len(totals)

    async def _loop(self) -> None:
        while True:
            try:
                await self.measure()
            except Exception:
                log.exception("r2_storage_measure_failed")
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
