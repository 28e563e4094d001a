"""A process killed in the middle of a migration leaves nothing half-done: the next start migrates
again and succeeds (issue 18: a kill during an auth D1's migration left tables without their
`alembic_version` row, and every retry failed on "table api_keys already exists")."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine

from nno.edge.cloud import LocalCloud
from nno.iam.auth_app import AUTH_MIGRATIONS_DIR
from nno.kernel.config import Settings
from nno.kernel.db import Database, sqlite_url
from nno.kernel.migrations import upgrade
from nno.registry.app import MIGRATIONS_DIR as REGISTRY_MIGRATIONS

ROOT = Path(__file__).parents[2]


class Crash(Exception):
    pass


@pytest.fixture
def fail_after_ddl() -> Iterator[Any]:
    """Make every engine raise right after its Nth CREATE statement (set `.after`)."""

    class Fault:
        after = 0
        seen = 0

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("CREATE"):
            Fault.seen += 1
            if Fault.after and Fault.seen == Fault.after:
                raise Crash(f"injected after CREATE #{Fault.seen}")

    event.listen(Engine, "after_cursor_execute", listener)
    try:
        yield Fault
    finally:
        event.remove(Engine, "after_cursor_execute", listener)


async def tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def database(settings: Settings, which: str) -> tuple[Database, LocalCloud | None]:
    """A per-platform auth D1 (a SQLite file, or a PostgreSQL schema reached as the D1's own role)
    or a service database (SQLite or PostgreSQL)."""
    if which == "service":
        return Database.for_service(settings, "iam"), None
    cloud = LocalCloud(settings)
    await cloud.ensure_d1("k3m9p2xw7q-default-auth-db")
    return await cloud.d1_database("k3m9p2xw7q-default-auth-db"), cloud


@pytest.mark.parametrize("which", ["d1", "service"])
@pytest.mark.parametrize("after", [1, 2, 5, 12])
async def test_a_migration_that_fails_midway_leaves_nothing_and_the_retry_succeeds(
        settings: Settings, tmp_path: Path, fail_after_ddl: Any, which: str, after: int) -> None:
    reference = Database(sqlite_url(tmp_path / "reference.sqlite"))
    db, cloud = await database(settings, which)
    try:
        await upgrade(reference, AUTH_MIGRATIONS_DIR)
        fail_after_ddl.after, fail_after_ddl.seen = after, 0
        with pytest.raises(Crash):
            await upgrade(db, AUTH_MIGRATIONS_DIR)
        fail_after_ddl.after = 0
        assert await tables(db) == set()  # nothing committed, not even alembic_version
        await upgrade(db, AUTH_MIGRATIONS_DIR)
        assert await tables(db) == await tables(reference)
    finally:
        await reference.dispose()
        await db.dispose()
        if cloud is not None:
            await cloud.close()


async def test_a_later_revision_failing_keeps_the_earlier_ones_undone_too(
        settings: Settings, fail_after_ddl: Any) -> None:
    """Registry has several revisions: a failure in a later one leaves the database at its start."""
    db = Database.for_service(settings, "registry")
    try:
        fail_after_ddl.after, fail_after_ddl.seen = 30, 0
        with pytest.raises(Crash):
            await upgrade(db, REGISTRY_MIGRATIONS)
        fail_after_ddl.after = 0
        assert await tables(db) == set()
        await upgrade(db, REGISTRY_MIGRATIONS)
        assert "platforms" in await tables(db)
    finally:
        await db.dispose()


_KILLED_MIGRATION = """
import asyncio, os, signal, sys
from pathlib import Path
from sqlalchemy import event
from sqlalchemy.engine import Engine
from nno.kernel.db import Database
from nno.kernel.migrations import upgrade

url, schema, migrations, after = sys.argv[1], sys.argv[2] or None, Path(sys.argv[3]), int(sys.argv[4])
manage_schema = sys.argv[5] == "1"  # a D1's schema is made by the cloud, its role cannot
seen = 0

@event.listens_for(Engine, "after_cursor_execute")
def kill(conn, cursor, statement, *args):
    global seen
    if statement.lstrip().upper().startswith("CREATE"):
        seen += 1
        if seen == after:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback: a crash

async def main():
    db = Database(url, schema=schema, manage_schema=manage_schema)
    await upgrade(db, migrations)
asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("which", ["d1", "service"])
@pytest.mark.parametrize("after", [2, 9])
async def test_a_process_killed_mid_migration_leaves_a_database_the_next_start_migrates(
        settings: Settings, tmp_path: Path, which: str, after: int) -> None:
    db, cloud = await database(settings, which)
    try:
        proc = subprocess.run([sys.executable, "-c", _KILLED_MIGRATION, db.url, db.schema or "",
                               str(AUTH_MIGRATIONS_DIR), str(after), "1" if db.manage_schema else "0"],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        await upgrade(db, AUTH_MIGRATIONS_DIR)
        assert {"api_keys", "alembic_version"} <= await tables(db)
    finally:
        await db.dispose()
        if cloud is not None:
            await cloud.close()
