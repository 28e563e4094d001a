"""SQLite writers of one process queue in order for the file instead of polling in SQLite's busy
handler (issue 18, goal 5: tenant creates under 20 clients); readers never queue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from nno.kernel.db import Database, sqlite_url
from nno.kernel.migrations import upgrade
from tests.kernel.sample_models import Widget

MIGRATIONS = Path(__file__).parent / "sample_migrations"


async def test_a_second_writer_waits_in_line_not_in_sqlite_and_readers_do_not_wait(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "w.db"))
    inserts: list[Any] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cur, statement, params, *_: inserts.append(params) if "INSERT" in statement else None)
    try:
        await upgrade(db, MIGRATIONS)
        first_wrote, release = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            async with db.session() as s:
                s.add(Widget(id="a", size=1))
                await s.flush()
                first_wrote.set()
                await release.wait()

        async def second() -> None:
            async with db.session() as s:
                s.add(Widget(id="b", size=2))

        one = asyncio.create_task(first())
        await first_wrote.wait()
        two = asyncio.create_task(second())
        await asyncio.sleep(0.2)
        assert not two.done()
        assert len(inserts) == 1  # the second INSERT has not reached SQLite: it waits in line
        async with db.session() as s:  # a reader is not held up by the open write
            assert (await s.execute(select(func.count()).select_from(Widget))).scalar_one() == 0
        release.set()
        await asyncio.wait_for(asyncio.gather(one, two), 10)
        async with db.session() as s:
            assert sorted((await s.execute(select(Widget.id))).scalars()) == ["a", "b"]
    finally:
        await db.dispose()


async def test_many_concurrent_writers_all_commit_in_order_of_arrival(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "many.db"))
    order: list[int] = []
    try:
        await upgrade(db, MIGRATIONS)

        async def write(i: int) -> None:
            async with db.session() as s:
                s.add(Widget(id=f"w{i}", size=i))
                await s.flush()
                order.append(i)
                await asyncio.sleep(0.005)  # the transaction stays open a little

        tasks = []
        for i in range(30):
            tasks.append(asyncio.create_task(write(i)))
            await asyncio.sleep(0)  # arrive one after the other
        await asyncio.gather(*tasks)
        assert order == list(range(30))
    finally:
        await db.dispose()
