"""Registry read latency at scale, by hand (not CI):

    .venv/bin/python bench/registry.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                                       [--platforms 100000] [--tenants 1000000] [--runs 300]

Creates a scratch PostgreSQL database, runs the Registry's migrations into schema `registry`,
bulk-loads platforms and tenants with INSERT ... SELECT generate_series, then times the service
layer (and the Registry's HTTP app in-process) for the list/get/tenant-list operations, and prints
the EXPLAIN (ANALYZE) plan of every SQL statement those operations run, flagging any sequential
scan. The scratch database is dropped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, text

from nno.kernel.bindings import Bindings
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.identity import SERVICE_IDENTITY, Identity
from nno.kernel.kv import MemoryKV
from nno.kernel.migrations import upgrade
from nno.kernel.service import ServiceContext
from nno.registry.access import Access
from nno.registry.app import MIGRATIONS_DIR, create_app
from nno.registry.schemas import TenantCreate
from nno.registry.service import PlatformService

BASE_MS = 1_700_000_000_000


def pid(n: int) -> str:
    return f"{n:010d}"


async def load(db: Database, platforms: int, tenants: int) -> None:
    statuses = "ARRAY['active','active','active','suspended','pending','pending_cancellation','cancelled']"
    async with db.engine.begin() as conn:
        t0 = time.perf_counter()
        await conn.execute(text(f"""
            INSERT INTO platforms (id, name, slug, status, tier, class, owner_user_id, created_at, updated_at)
            SELECT lpad(g::text, 10, '0'), 'Platform ' || g, 'p-' || g,
                   ({statuses})[1 + g % 7], (ARRAY['starter','growth','scale'])[1 + g % 3], 'platform',
                   'u' || lpad((g % (:platforms / 2))::text, 9, '0'),
                   CAST(:base AS bigint) + g * 1000, CAST(:base AS bigint) + g * 1000
            FROM generate_series(1, :platforms) AS g"""), {"platforms": platforms, "base": BASE_MS})
        await conn.execute(text("""
            INSERT INTO entities (id, platform_id, parent_id, type, name, slug, status, created_at, updated_at)
            SELECT 'e' || lpad(g::text, 9, '0'),
                   -- a tenth of all tenants belong to platform 1, the rest spread evenly
                   lpad((CASE WHEN g <= :tenants / 10 THEN 1 ELSE 1 + (g - 1) % :platforms END)::text, 10, '0'),
                   NULL,
                   'tenant', 'Tenant ' || g, 't-' || g, 'active', CAST(:base AS bigint) + g, CAST(:base AS bigint) + g
            FROM generate_series(1, :tenants) AS g"""), {"platforms": platforms, "tenants": tenants,
                                                         "base": BASE_MS})
        # What creates and transitions keep up to date one row at a time, set once for the bulk load.
        await conn.execute(text("""
            UPDATE platform_status_counts c
            SET count = (SELECT count(*) FROM platforms p WHERE p.status = c.status)"""))
        loaded = time.perf_counter() - t0
    # VACUUM (outside a transaction) sets the visibility map, as autovacuum would after a bulk load,
    # so the planner may answer counts from the indexes alone.
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE platforms"))
        await conn.execute(text("VACUUM ANALYZE entities"))
    print(f"loaded {platforms:,} platforms and {tenants:,} tenants in {loaded:.1f}s")


def pct(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[98]


async def timed(name: str, runs: int, op: Callable[[int], Awaitable[Any]]) -> None:
    for i in range(min(20, runs)):  # warm the pool and caches
        await op(i)
    samples = []
    for i in range(runs):
        t0 = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - t0) * 1000)
    p50, p99 = pct(samples)
    print(f"  {name:<48} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")


class Capture:
    """Collects the SQL statements (and parameters) one operation sends."""

    def __init__(self, db: Database) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.active = False
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._hook)

    def _hook(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if self.active:
            self.statements.append((statement, parameters))

    async def run(self, op: Callable[[], Awaitable[Any]]) -> list[tuple[str, Any]]:
        self.statements, self.active = [], True
        try:
            await op()
        finally:
            self.active = False
        return self.statements


async def explain(db: Database, statements: list[tuple[str, Any]]) -> bool:
    """Print each statement's plan; True when none scans a table sequentially."""
    ok = True
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        for sql, params in statements:
            # Reads are run (ANALYZE); writes are only planned, so explaining changes nothing.
            options = "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF" if sql.lstrip().upper().startswith(
                "SELECT") else "COSTS OFF"
            plan = await driver.fetch(f"EXPLAIN ({options}) " + sql, *(params or ()))
            lines = [row[0] for row in plan]
            print("    SQL: " + " ".join(sql.split())[:300])
            for line in lines:
                print("      " + line)
            scans = [line for line in lines if "Seq Scan" in line]
            # The status counters are one row per status (7 rows, one page): reading them whole is O(1).
            if any("platform_status_counts" not in line for line in scans):
                ok = False
                print("      !! sequential scan of a table that grows")
    return ok


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--platforms", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    name = f"nno_bench_registry_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.pg)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    db = Database(url, schema="registry")
    try:
        await upgrade(db, MIGRATIONS_DIR or Path())
        await load(db, args.platforms, args.tenants)
        ctx = ServiceContext(name="registry", settings=Settings(database_url=url), db=db, bindings=Bindings(),
                             kv=MemoryKV())
        service = PlatformService(ctx)
        svc = Access(SERVICE_IDENTITY, None)
        owner = Identity(auth_type="session", user_id="u000000042", role="user")
        user = Access(owner, None)
        n = args.platforms
        probe = pid(min(4242, n))
        mid = await service.list_platforms(svc, limit=50, cursor=None)
        deep_cursor = mid["pagination"]["nextCursor"]
        for _ in range(200):  # walk ~10,000 rows in, to time a deep page
            deep_cursor = (await service.list_platforms(svc, limit=50, cursor=deep_cursor))["pagination"][
                "nextCursor"]

        big_cursor = None
        for _ in range(200):
            big_cursor = (await service.list_tenants(svc, pid(1), parent_id=None, limit=50, cursor=big_cursor))[
                "pagination"]["nextCursor"]
        # Active `scale` platforms (no tenant limit) for the write path.
        writable = [g for g in range(2, n + 1, 3) if g % 7 in (0, 1, 2)]

        def new_tenant(i: int) -> Awaitable[Any]:
            body = TenantCreate(name="Bench", slug=f"bench-{uuid.uuid4().hex[:12]}")
            return service.create_tenant(svc, pid(writable[(i * 31) % len(writable)]), body)

        ops: dict[str, Callable[[int], Awaitable[Any]]] = {
            "list platforms, first page (50)": lambda i: service.list_platforms(svc, limit=50, cursor=None),
            "list platforms, page 200 (cursor)": lambda i: service.list_platforms(svc, limit=50, cursor=deep_cursor),
            "list platforms, status=suspended": lambda i: service.list_platforms(svc, limit=50, cursor=None,
                                                                                 status="suspended"),
            "list platforms, as a user (owner filter)": lambda i: service.list_platforms(
                Access(Identity(auth_type="session", user_id=f"u{i % (n // 2):09d}", role="user"), None),
                limit=50, cursor=None),
            "get platform by id": lambda i: service.get_platform(svc, pid(1 + (i * 7919) % n)),
            "get platform by slug": lambda i: service.get_by_slug(svc, f"p-{1 + (i * 7919) % n}"),
            "list tenants of a platform (50)": lambda i: service.list_tenants(
                svc, pid(1 + (i * 7919) % n), parent_id=None, limit=50, cursor=None),
            "list tenants of the 100k-tenant platform (50)": lambda i: service.list_tenants(
                svc, pid(1), parent_id=None, limit=50, cursor=None),
            "same, deep page (cursor ~10,000 rows in)": lambda i: service.list_tenants(
                svc, pid(1), parent_id=None, limit=50, cursor=big_cursor),
            "create a tenant (lock, limit count, insert, audit)": new_tenant,
        }
        print(f"\nservice layer, {args.runs} runs each (PostgreSQL, {n:,} platforms, {args.tenants:,} tenants)")
        for label, op in ops.items():
            await timed(label, args.runs, op)

        app = create_app(ctx)
        transport = httpx.ASGITransport(app=app)
        headers = SERVICE_IDENTITY.to_headers()
        print(f"\nRegistry HTTP app in-process (no gateway), {args.runs} runs each")
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            async def http_list(_i: int) -> None:
                assert (await client.get("/", headers=headers)).status_code == 200

            async def http_get(i: int) -> None:
                assert (await client.get(f"/{pid(1 + (i * 7919) % n)}", headers=headers)).status_code == 200

            async def http_tenants(i: int) -> None:
                resp = await client.get(f"/{pid(1 + (i * 7919) % n)}/tenants", headers=headers)
                assert resp.status_code == 200

            await timed("GET /  (list, 50)", args.runs, http_list)
            await timed("GET /{id}", args.runs, http_get)
            await timed("GET /{id}/tenants", args.runs, http_tenants)

        print("\nEXPLAIN ANALYZE of every statement each operation runs")
        capture = Capture(db)
        all_indexed = True
        for label, op in (
            ("list platforms, first page", lambda: service.list_platforms(svc, limit=50, cursor=None)),
            ("list platforms, deep page", lambda: service.list_platforms(svc, limit=50, cursor=deep_cursor)),
            ("list platforms, status filter", lambda: service.list_platforms(svc, limit=50, cursor=None,
                                                                             status="suspended")),
            ("list platforms, as a user", lambda: service.list_platforms(user, limit=50, cursor=None)),
            ("get platform", lambda: service.get_platform(svc, probe)),
            ("get platform by slug", lambda: service.get_by_slug(svc, f"p-{int(probe)}")),
            ("list tenants", lambda: service.list_tenants(svc, probe, parent_id=None, limit=50, cursor=None)),
            ("list tenants of the big platform, deep page",
             lambda: service.list_tenants(svc, pid(1), parent_id=None, limit=50, cursor=big_cursor)),
            ("create a tenant", lambda: new_tenant(1)),
        ):
            print(f"  {label}")
            all_indexed &= await explain(db, await capture.run(op))
        print("\nevery statement over a growing table used an index" if all_indexed
              else "\nSOME STATEMENT SCANNED A GROWING TABLE")
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        print(f"dropped scratch database {name}")


if __name__ == "__main__":
    asyncio.run(main())
