"""A D1 on each backend (issue 18, goal 6): the statements a feature's Worker issues (the tasks
feature's insert, point read and list), through the handle the Worker gets: a SQLite file
(embedded), or a PostgreSQL schema reached as the D1's own role (scaled). Also the cost of making a
D1 and of running the tasks feature's migration on each. Prints figures; asserts nothing.

    .venv/bin/python bench/d1_backends.py [--rows 300] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from sqlalchemy import text

from nno.edge.cloud import LocalCloud
from nno.edge.d1 import drop_roles_of
from nno.kernel.config import Settings
from nno.sdk.migrations import apply_migrations

TASKS_MIGRATIONS = Path(__file__).parents[1] / "features" / "tasks" / "src" / "nno_feature_tasks" / "migrations"
D1 = "k3m9p2xw7q-default-tasks-db"


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"


async def _timed(n: int, op: Callable[[int], Awaitable[object]]) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        await op(i)
        out.append(time.perf_counter() - started)
    return out


async def run(name: str, settings: Settings, rows: int) -> None:
    cloud = LocalCloud(settings)
    try:
        await cloud.ready()
        started = time.perf_counter()
        await cloud.ensure_d1(D1)
        made = time.perf_counter() - started
        db = await cloud.d1_database(D1)
        started = time.perf_counter()
        await apply_migrations(db, TASKS_MIGRATIONS, "tasks")
        migrated = time.perf_counter() - started

        async def execute(sql: str, params: dict[str, object]) -> None:
            async with db.session() as s:
                result = await s.execute(text(sql), params)
                if result.returns_rows:  # type: ignore[attr-defined]
                    result.all()

        await execute("INSERT INTO projects (id, org_id, name, created_by, created_at) VALUES ('p', 'o', 'P', 'u', 0)",
                      {})
        inserts = await _timed(rows, lambda i: execute(
            "INSERT INTO tasks (id, org_id, project_id, title, created_by, created_at, updated_at) "
            "VALUES (:id, 'o', 'p', :t, 'u', :at, :at)",
            {"id": f"t{i}", "t": f"task {i}", "at": 1_700_000_000_000 + i}))
        reads = await _timed(rows, lambda i: execute(
            "SELECT id, title, status FROM tasks WHERE id = :id AND org_id = 'o'", {"id": f"t{i}"}))
        lists = await _timed(max(rows // 10, 1), lambda i: execute(
            "SELECT id, title, status, assignee, created_at FROM tasks WHERE org_id = 'o' AND project_id = 'p' "
            "ORDER BY created_at, id", {}))
        await db.dispose()
        print(f"{name:<10} make D1 {made * 1000:7.1f} ms   tasks migration {migrated * 1000:7.1f} ms")
        print(f"{'':<10} insert  {_ms(inserts)}")
        print(f"{'':<10} read    {_ms(reads)}")
        print(f"{'':<10} list {rows:>3} {_ms(lists)}")
        await cloud.delete_d1(D1)
    finally:
        await cloud.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await run("SQLite", Settings(data_dir=Path(tmp) / "embedded"), args.rows)
        name = f"nno_bench_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(args.pg)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = args.pg.rsplit("/", 1)[0] + "/" + name
            await run("PostgreSQL", Settings(data_dir=Path(tmp) / "scaled", database_url=url), args.rows)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
            await drop_roles_of(args.pg, name)


if __name__ == "__main__":
    asyncio.run(main())
