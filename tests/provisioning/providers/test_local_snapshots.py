"""The local cloud's D1 snapshots, which a stack upgrade takes before its migrations and restores
when the job rolls back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from nno.kernel.config import Settings
from nno.provisioning.providers.base import ProviderError
from nno.provisioning.providers.local import LocalProvider


def _rows(path: str) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute("SELECT id, title FROM tasks_items ORDER BY id"))
    finally:
        conn.close()


async def test_snapshot_restore_and_drop(make_settings: Callable[..., Settings]) -> None:
    provider = LocalProvider(make_settings())
    try:
        ref = await provider.ensure_d1("abcde12345-stk1234567-db")
        path = ref.metadata["path"]
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE tasks_items (id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO tasks_items (title) VALUES ('before')")
        conn.commit()
        snapshot = await provider.snapshot_d1(ref.name)
        # A migration and new data after the snapshot, with the connection still open (a live Worker).
        conn.execute("ALTER TABLE tasks_items ADD COLUMN done INTEGER")
        conn.execute("INSERT INTO tasks_items (title) VALUES ('after')")
        conn.commit()
        await provider.restore_d1(ref.name, snapshot)
        assert _rows(path) == [(1, "before")]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(tasks_items)")]
        assert columns == ["id", "title"]  # the open connection sees the restored database too
        conn.close()
        await provider.drop_d1_snapshot(ref.name, snapshot)
        with pytest.raises(ProviderError, match="gone"):
            await provider.restore_d1(ref.name, snapshot)
        with pytest.raises(ProviderError, match="invalid snapshot"):
            await provider.restore_d1(ref.name, "../../etc")
    finally:
        await provider.close()
