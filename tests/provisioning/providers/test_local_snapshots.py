"""The local cloud's D1 snapshots, which a stack upgrade takes before its migrations and restores
when the job rolls back (a SQLite file's copy, or a PostgreSQL schema's when scaled)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from nno.kernel.config import Settings
from nno.provisioning.providers.base import ProviderError
from nno.provisioning.providers.local import LocalProvider


async def test_snapshot_restore_and_drop(make_settings: Callable[..., Settings]) -> None:
    provider = LocalProvider(make_settings())
    try:
        ref = await provider.ensure_d1("abcde12345-stk1234567-db")
        db = await provider.cloud.d1_database(ref.name)  # a live Worker's handle, kept open throughout
        async with db.session() as s:
            await s.execute(text("CREATE TABLE tasks_lists (id TEXT PRIMARY KEY)"))
            await s.execute(text("CREATE TABLE tasks_items (id INTEGER PRIMARY KEY, title TEXT, "
                                 "list TEXT REFERENCES tasks_lists (id))"))
            await s.execute(text("INSERT INTO tasks_lists (id) VALUES ('l1')"))
            await s.execute(text("INSERT INTO tasks_items (id, title, list) VALUES (1, 'before', 'l1')"))
        snapshot = await provider.snapshot_d1(ref.name)
        assert snapshot
        # A migration and new data after the snapshot.
        async with db.session() as s:
            await s.execute(text("ALTER TABLE tasks_items ADD COLUMN done INTEGER"))
            await s.execute(text("INSERT INTO tasks_items (id, title) VALUES (2, 'after')"))
        await provider.restore_d1(ref.name, snapshot)
        await db.engine.dispose()  # PostgreSQL connections cache statement plans of the old tables
        async with db.session() as s:
            rows = (await s.execute(text("SELECT * FROM tasks_items ORDER BY id"))).mappings().all()
        assert [dict(r) for r in rows] == [{"id": 1, "title": "before", "list": "l1"}]
        with pytest.raises(Exception, match=r"(?i)foreign key"):  # constraints came back too
            async with db.session() as s:
                await s.execute(text("INSERT INTO tasks_items (id, title, list) VALUES (3, 'x', 'nope')"))
        await db.dispose()
        await provider.drop_d1_snapshot(ref.name, snapshot)
        with pytest.raises(ProviderError, match="gone"):
            await provider.restore_d1(ref.name, snapshot)
        with pytest.raises(ProviderError, match="invalid snapshot"):
            await provider.restore_d1(ref.name, "../../etc")
        assert await provider.snapshot_d1("abcde12345-stk1234567-none") == ""
    finally:
        await provider.close()
