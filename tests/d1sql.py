"""Reading a D1 from a test on either backend (a SQLite file, or a PostgreSQL schema when scaled),
through the handle a Worker would get."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from nno.edge.cloud import LocalCloud


async def d1_rows(cloud: LocalCloud, name: str, sql: str,
                  params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement (`:name` parameters) on the D1 in its own transaction; rows as tuples."""
    db = await cloud.d1_database(name)
    try:
        async with db.session() as s:
            result = await s.execute(text(sql), params or {})
            return [tuple(r) for r in result.all()] if result.returns_rows else []  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def d1_tables(cloud: LocalCloud, name: str) -> set[str]:
    if cloud.d1s is None:
        return {r[0] for r in await d1_rows(cloud, name, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    rows = await d1_rows(cloud, name, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {r[0] for r in rows}


async def d1_rowcount(cloud: LocalCloud, name: str, sql: str, params: dict[str, Any] | None = None) -> int:
    db = await cloud.d1_database(name)
    try:
        async with db.session() as s:
            return int((await s.execute(text(sql), params or {})).rowcount)  # type: ignore[attr-defined]
    finally:
        await db.dispose()
