from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text

from nno.kernel.config import Settings
from nno.kernel.db import Database, async_url
from nno.kernel.migrations import upgrade
from tests.conftest import BACKEND
from tests.kernel.sample_models import Widget

MIGRATIONS = Path(__file__).parent / "sample_migrations"


async def test_migrations_run_and_are_idempotent(settings: Settings) -> None:
    db = Database.for_service(settings, "sample")
    try:
        await upgrade(db, MIGRATIONS)
        await upgrade(db, MIGRATIONS)  # second start: nothing to do, no error
        async with db.session() as s:
            s.add(Widget(id="w1", size=3))
        async with db.session() as s:
            assert (await s.execute(select(Widget.size))).scalar_one() == 3
    finally:
        await db.dispose()


async def test_session_rolls_back_on_error(settings: Settings) -> None:
    db = Database.for_service(settings, "sample")
    try:
        await upgrade(db, MIGRATIONS)
        with pytest.raises(RuntimeError):
            async with db.session() as s:
                s.add(Widget(id="w2", size=1))
                await s.flush()
                raise RuntimeError("boom")
        async with db.session() as s:
            assert (await s.execute(select(Widget).where(Widget.id == "w2"))).first() is None
    finally:
        await db.dispose()


async def test_services_are_isolated(settings: Settings) -> None:
    """Two services with the same table name never see each other's rows (file or schema apart)."""
    a, b = Database.for_service(settings, "svc_a"), Database.for_service(settings, "svc_b")
    try:
        await upgrade(a, MIGRATIONS)
        await upgrade(b, MIGRATIONS)
        async with a.session() as s:
            s.add(Widget(id="only-a", size=1))
        async with b.session() as s:
            assert (await s.execute(text("SELECT count(*) FROM widgets"))).scalar_one() == 0
    finally:
        await a.dispose()
        await b.dispose()


def test_async_url_picks_async_drivers(tmp_path: Path) -> None:
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"


def test_schema_names_are_checked() -> None:
    with pytest.raises(ValueError):
        Database("postgresql://u@h/db", schema='x"; drop')


_UPGRADE_SCRIPT = """
import asyncio, sys, time
from pathlib import Path
from nno.kernel.db import Database
from nno.kernel.migrations import upgrade
async def main():
    db = Database(sys.argv[1], schema="racing")
    time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all processes start the upgrade together
    await upgrade(db, Path(sys.argv[2]))
    await db.dispose()
asyncio.run(main())
"""


@pytest.mark.skipif(BACKEND != "scaled", reason="cross-process migration locking is a PostgreSQL concern")
async def test_concurrent_first_starts_in_separate_processes_migrate_once(settings: Settings) -> None:
    """Several processes (nno serve, nno worker...) starting on one fresh database at the same time."""
    import subprocess
    import sys
    import time

    assert settings.database_url
    start_at = str(time.time() + 4)
    procs = [subprocess.Popen([sys.executable, "-c", _UPGRADE_SCRIPT, settings.database_url, str(MIGRATIONS), start_at],
                              stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
             for _ in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    db = Database(settings.database_url, schema="racing")
    try:
        async with db.session() as s:
            assert (await s.execute(text("SELECT version_num FROM alembic_version"))).scalars().all() == ["0001"]
    finally:
        await db.dispose()
