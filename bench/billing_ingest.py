"""Billing's usage ingest into PostgreSQL, and the cost of counting a Worker request, by hand (not CI):

    .venv/bin/python bench/billing_ingest.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                                             [--events 200000] [--batch 5000] [--http]

Creates a scratch PostgreSQL database, runs Billing's migrations into schema `billing`, then ingests
`--events` distinct usage events in batches of `--batch` through the service layer (one INSERT ...
ON CONFLICT DO NOTHING per batch), then the same events again (every one a duplicate, ignored), and
prints events per second for both. `--http` also times the ingest route through the Billing app
in-process (request validation included). Last, it times `WorkerMeter.count`, the edge's per-request
hook, against one in-process request to a minimal ASGI app. The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from nno.billing.app import MIGRATIONS_DIR, create_app
from nno.billing.config import BillingSettings
from nno.billing.provider import LocalProvider
from nno.billing.service import BillingService
from nno.edge.metering import WorkerMeter
from nno.kernel.bindings import Bindings
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.kv import MemoryKV
from nno.kernel.migrations import upgrade
from nno.kernel.service import ServiceContext

METRICS = ("worker_invocations", "d1_rows_read", "d1_rows_written", "kv_reads")


def events(n: int, prefix: str) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [{"id": f"{prefix}-{i}", "platformId": f"p{i % 500:09d}", "tenantId": f"t{i % 37}",
             "metric": METRICS[i % len(METRICS)], "quantity": 1 + i % 97, "timestamp": now - i}
            for i in range(n)]


async def ingest_rate(svc: BillingService, batch: list[dict[str, Any]], size: int) -> tuple[float, int]:
    inserted = 0
    t0 = time.perf_counter()
    for i in range(0, len(batch), size):
        inserted += (await svc.ingest(batch[i:i + size]))["inserted"]
    return len(batch) / (time.perf_counter() - t0), inserted


async def http_rate(ctx: ServiceContext, batch: list[dict[str, Any]], size: int) -> float:
    app = create_app(ctx)
    headers = SERVICE_IDENTITY.to_headers()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing") as client:
        t0 = time.perf_counter()
        for i in range(0, len(batch), size):
            resp = await client.post("/usage/events", json={"events": batch[i:i + size]}, headers=headers)
            assert resp.status_code == 200, resp.text
        return len(batch) / (time.perf_counter() - t0)


async def counting_cost(rounds: int = 20_000) -> tuple[float, float]:
    """ns per `count()`, and ns per in-process request to a minimal ASGI app (the floor of a Worker
    request through the edge), for scale."""

    class W:
        platform_id, name = "p000000001", "p000000001-default-auth"

    meter, worker = WorkerMeter(Bindings()), W()
    t0 = time.perf_counter_ns()
    for _ in range(rounds * 10):
        meter.count(worker)
    per_count = (time.perf_counter_ns() - t0) / (rounds * 10)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
        t0 = time.perf_counter_ns()
        for _ in range(rounds // 10):
            await client.get("/")
        per_request = (time.perf_counter_ns() - t0) / (rounds // 10)
    return per_count, per_request


async def main(pg: str, n: int, size: int, with_http: bool) -> None:
    name = f"nno_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = pg.rsplit("/", 1)[0] + "/" + name
    db = Database(url, schema="billing")
    try:
        await upgrade(db, Path(MIGRATIONS_DIR))  # type: ignore[arg-type]
        settings = Settings(data_dir=Path("/tmp/nno-bench-billing"), database_url=url)
        ctx = ServiceContext(name="billing", settings=settings, db=db, bindings=Bindings(), kv=MemoryKV())
        svc = BillingService(ctx, BillingSettings(), LocalProvider())
        batch = events(n, "ev")
        await ingest_rate(svc, events(size, "warm"), size)
        rate, inserted = await ingest_rate(svc, batch, size)
        print(f"ingest: {n} new events in batches of {size}: {rate:,.0f} events/s ({inserted} inserted)")
        rate, inserted = await ingest_rate(svc, batch, size)
        print(f"ingest: the same {n} events again: {rate:,.0f} events/s ({inserted} inserted: duplicates ignored)")
        if with_http:
            rate = await http_rate(ctx, events(n // 4, "http"), size)
            print(f"ingest over the Billing app in-process (validation included): {rate:,.0f} events/s")
        per_count, per_request = await counting_cost()
        print(f"counting: WorkerMeter.count {per_count:,.0f} ns per request; a minimal in-process ASGI request "
              f"{per_request:,.0f} ns: {100 * per_count / per_request:.2f}% of even that floor")
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.pg, args.events, args.batch, args.http))
