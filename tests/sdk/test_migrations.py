"""A feature's plain SQL migrations: applied in number order, a failing file leaves nothing of itself
(DDL included), nothing is applied twice, an applied file that changed is refused, and `{{prefix}}`
lets two features share one D1."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nno.kernel.db import Database, sqlite_url
from nno.sdk.migrations import MigrationError, apply_migrations, drop_feature_data, split_statements


@pytest.fixture
async def d1(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(sqlite_url(tmp_path / "d1.sqlite"))
    try:
        yield db
    finally:
        await db.dispose()


def tables(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "d1.sqlite") as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_in_order_once_and_atomic_per_file(tmp_path: Path, d1: Database) -> None:
    m = tmp_path / "m"
    m.mkdir()
    (m / "0002_more.sql").write_text("CREATE TABLE {{prefix}}b (id TEXT);\n")
    (m / "0001_init.sql").write_text("-- first\nCREATE TABLE {{prefix}}a (id TEXT, note TEXT DEFAULT 'a;b');\n"
                                     "INSERT INTO {{prefix}}a (id) VALUES ('x');\n")
    assert await apply_migrations(d1, m, "f", prefix="f_") == ["0001_init.sql", "0002_more.sql"]
    assert await apply_migrations(d1, m, "f", prefix="f_") == []
    # A second feature shares the D1 under its own prefix.
    assert await apply_migrations(d1, m, "g", prefix="g_") == ["0001_init.sql", "0002_more.sql"]
    assert {"f_a", "f_b", "g_a", "g_b"} <= tables(tmp_path)

    (m / "0003_broken.sql").write_text("CREATE TABLE {{prefix}}c (id TEXT);\nINSERT INTO nowhere VALUES (1);\n")
    with pytest.raises(MigrationError, match=r"0003_broken\.sql"):
        await apply_migrations(d1, m, "f", prefix="f_")
    assert "f_c" not in tables(tmp_path)  # the CREATE TABLE of the failing file was rolled back too
    (m / "0003_broken.sql").write_text("CREATE TABLE {{prefix}}c (id TEXT);\n")
    assert await apply_migrations(d1, m, "f", prefix="f_") == ["0003_broken.sql"]

    (m / "0001_init.sql").write_text("CREATE TABLE {{prefix}}a (id TEXT);\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(d1, m, "f", prefix="f_")


async def test_a_badly_named_directory_is_refused_before_anything_runs(tmp_path: Path, d1: Database) -> None:
    m = tmp_path / "m"
    m.mkdir()
    (m / "0001_init.sql").write_text("CREATE TABLE a (id TEXT);\n")
    (m / "init2.sql").write_text("CREATE TABLE b (id TEXT);\n")
    with pytest.raises(MigrationError, match=r"init2\.sql"):
        await apply_migrations(d1, m, "f")
    assert "a" not in tables(tmp_path)


TEXT = st.text(alphabet=st.sampled_from("ab; '\n-"), max_size=12)


@given(st.lists(TEXT, min_size=1, max_size=5))
def test_semicolons_in_strings_do_not_split(values: list[str]) -> None:
    stmts = [f"INSERT INTO t VALUES ('{v.replace(chr(39), chr(39) * 2)}');" for v in values]
    assert split_statements("\n".join(stmts)) == stmts
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (v TEXT)")
    for stmt in split_statements("\n".join(stmts)):
        conn.execute(stmt)
    assert [r[0] for r in conn.execute("SELECT v FROM t")] == values


def test_trigger_bodies_stay_whole() -> None:
    sql = ("CREATE TABLE t (v TEXT);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET v = 'x;y';\nEND;\n"
           "-- trailing comment\n")
    assert len(split_statements(sql)) == 2


async def test_dropping_a_features_data_leaves_the_others(tmp_path: Path, d1: Database) -> None:
    m = tmp_path / "m"
    m.mkdir()
    (m / "0001_init.sql").write_text("CREATE TABLE {{prefix}}items (id INTEGER PRIMARY KEY AUTOINCREMENT);\n"
                                     "CREATE VIEW {{prefix}}v AS SELECT id FROM {{prefix}}items;\n"
                                     "CREATE TRIGGER {{prefix}}t AFTER INSERT ON {{prefix}}items\n"
                                     "BEGIN SELECT 1; END;\n")
    await apply_migrations(d1, m, "tasks", prefix="tasks_")
    await apply_migrations(d1, m, "tasks-x", prefix="tasks_x_")  # a prefix that starts like the other's
    dropped = await drop_feature_data(d1, "tasks")
    assert sorted(dropped) == ["tasks_items", "tasks_t", "tasks_v"]
    assert {"tasks_x_items"} <= tables(tmp_path) and "tasks_items" not in tables(tmp_path)
    assert await apply_migrations(d1, m, "tasks", prefix="tasks_") == ["0001_init.sql"]
