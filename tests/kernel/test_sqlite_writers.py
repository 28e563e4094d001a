"""SQLite writers of one process queue in order for the file instead of polling in SQLite's busy
handler (issue 18, goal 5: tenant creates under 20 clients); readers never queue."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError

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


def _thread_calls(monkeypatch: Any) -> list[str]:
    """Names of the calls that went through an aiosqlite connection's thread."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_the_writer_runs_its_transaction_on_the_loop(
        tmp_path: Path, monkeypatch: Any) -> None:
    db = Database(sqlite_url(tmp_path / "inline.db"))
    try:
        await upgrade(db, MIGRATIONS)
        async with db.session() as s:  # a connection in the pool already
            await s.execute(select(func.count()).select_from(Widget))
        calls = _thread_calls(monkeypatch)
        async with db.session() as s:
            s.add(Widget(id="a", size=1))
            await s.flush()
            await s.execute(update(Widget).where(Widget.id == "a").values(size=2))
            assert (await s.execute(select(Widget.size).where(Widget.id == "a"))).scalar_one() == 2
            assert calls == []
            owned = s._owned
            assert owned is not None and owned.owner is asyncio.current_task()
        assert calls == []  # the commit too
        assert owned.owner is None  # the lock and the connection's loop mode end with the transaction
        async with db.session() as s:  # the same task reading afterwards uses the thread again
            assert (await s.execute(select(Widget.size))).scalar_one() == 2
        assert calls == ["execute", "fetchall"]
    finally:
        await db.dispose()


async def test_a_failed_write_rolls_back_and_frees_the_writer(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "fail.db"))
    try:
        await upgrade(db, MIGRATIONS)
        async with db.session() as s:
            s.add(Widget(id="a", size=1))
        with pytest.raises(IntegrityError):
            async with db.session() as s:
                s.add(Widget(id="b", size=1))
                await s.flush()
                s.add(Widget(id="a", size=2))  # duplicate key: the whole transaction is undone
        async with db.session() as s:
            s.add(Widget(id="c", size=3))  # the writer lock was given back
        async with db.session() as s:
            assert sorted((await s.execute(select(Widget.id))).scalars()) == ["a", "c"]
    finally:
        await db.dispose()


async def test_a_file_held_by_another_process_is_waited_for_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    db = Database(sqlite_url(path))
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        await upgrade(db, MIGRATIONS)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the file
        other.execute("INSERT INTO widgets (id, size) VALUES ('other', 0)")
        started = asyncio.Event()

        async def write() -> None:
            async with db.session() as s:
                started.set()
                s.add(Widget(id="mine", size=1))

        writer = asyncio.create_task(write())
        await started.wait()
        done_before_release: list[bool] = []

        def release() -> None:
            done_before_release.append(writer.done())
            other.execute("COMMIT")

        # The other writer lets go from the event loop: had the waiting writer blocked the loop in
        # SQLite's busy handler (30 s), the release could not run and the deadline below would pass.
        asyncio.get_running_loop().call_later(0.2, release)
        await asyncio.wait_for(writer, 10)
        assert done_before_release == [False]  # it did wait for the file
        async with db.session() as s:
            assert sorted((await s.execute(select(Widget.id))).scalars()) == ["mine", "other"]
    finally:
        other.close()
        await db.dispose()


async def test_checkpoints_run_off_the_commits_and_the_wal_restart_commits_on_the_thread(
        tmp_path: Path, monkeypatch: Any) -> None:
    db = Database(sqlite_url(tmp_path / "wal.db"))
    try:
        await upgrade(db, MIGRATIONS)
        wal = db.checkpoints
        assert wal is not None
        monkeypatch.setattr(wal, "EVERY", 5)
        async with db.session() as s:  # a connection in the pool already
            await s.execute(select(func.count()).select_from(Widget))
        calls = _thread_calls(monkeypatch)
        for i in range(5):
            async with db.session() as s:
                s.add(Widget(id=f"w{i}", size=i))
        assert calls == []  # five commits on the loop; the fifth started a checkpoint on a thread
        await wal.wait()
        assert wal.restart_pending  # everything was copied into the database file
        async with db.session() as s:
            s.add(Widget(id="next", size=0))
        assert calls == ["commit"]  # the commit that starts the WAL over (and syncs it) left the loop
        assert not wal.restart_pending
        async with db.session() as s:
            assert (await s.execute(select(func.count()).select_from(Widget))).scalar_one() == 6
    finally:
        await db.dispose()
