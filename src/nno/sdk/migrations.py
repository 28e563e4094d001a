"""A feature's database migrations: plain SQL files `NNNN_name.sql` in one directory, applied in
number order to its D1, each file with its record in one transaction, so a failing file (or a process
killed during it) leaves the database as it was before that file.

The files are written in D1's dialect, SQLite's. On a scaled installation a D1 is a PostgreSQL schema:
each statement is translated by sqlglot (integers are 64-bit as in SQLite: `INTEGER` becomes
`BIGINT`), and each file runs under an advisory lock held by its transaction.

Applied files are recorded in `_nno_migrations` (feature, name, checksum): a file already applied is
skipped, and one edited after it was applied is refused (migrations are immutable once shipped).
`{{prefix}}` in the SQL is replaced by the feature's table prefix (empty when the feature has its
own D1; the stack's prefix when it shares one), so one D1 can hold several features' tables.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import sqlglot
import sqlglot.errors
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from nno.kernel.clock import now_ms
from nno.kernel.db import Database
from nno.sdk.definition import TABLE_PREFIX_PLACEHOLDER

MIGRATION_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
TRACKING_TABLE = "_nno_migrations"
_CREATE_TRACKING = (
    "CREATE TABLE IF NOT EXISTS _nno_migrations (feature TEXT NOT NULL, name TEXT NOT NULL, "
    "checksum TEXT NOT NULL, applied_at INTEGER NOT NULL, PRIMARY KEY (feature, name))"
)
# The tables, views and triggers each feature's migrations created: what deleting its data drops
# from a D1 it shares (its table prefix alone cannot tell `tasks_x_...` of `tasks` from `tasks-x`'s).
_CREATE_OBJECTS = (
    "CREATE TABLE IF NOT EXISTS _nno_migration_objects (feature TEXT NOT NULL, type TEXT NOT NULL, "
    "name TEXT NOT NULL, PRIMARY KEY (feature, type, name))"
)
_OBJECTS = ("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view', 'trigger') "
            "AND name NOT LIKE 'sqlite!_%' ESCAPE '!'")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migration_problems(directory: Path) -> list[str]:
    """What is wrong with a migrations directory (empty when nothing): used by rule V12."""
    if not directory.is_dir():
        return [f"{directory} is not a directory"]
    problems: list[str] = []
    numbers: dict[str, str] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith((".", "_")) or path.is_dir():
            continue
        m = MIGRATION_NAME_RE.match(path.name)
        if m is None:
            problems.append(f"{path.name}: migration files are named NNNN_name.sql (lowercase, digits, _)")
            continue
        if m.group(1) in numbers:
            problems.append(f"{path.name}: number {m.group(1)} is also used by {numbers[m.group(1)]}")
        numbers[m.group(1)] = path.name
        try:
            sql = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path.name}: unreadable ({exc})")
            continue
        if not split_statements(sql):
            problems.append(f"{path.name}: contains no SQL statement")
        elif not sqlite3.complete_statement(sql.strip() or ";"):
            problems.append(f"{path.name}: the last statement is not complete (missing ';'?)")
    return problems


def load_migrations(directory: Path) -> list[Migration]:
    problems = migration_problems(directory)
    if problems:
        raise MigrationError("; ".join(problems))
    out = []
    for path in sorted(directory.iterdir()):
        m = MIGRATION_NAME_RE.match(path.name)
        if m is not None and path.is_file():
            out.append(Migration(int(m.group(1)), path.name, path.read_text(encoding="utf-8")))
    return sorted(out, key=lambda mig: mig.number)


def split_statements(sql: str) -> list[str]:
    """Complete SQLite statements in `sql` (semicolons inside strings, comments and trigger bodies
    do not split), by SQLite's own `sqlite3.complete_statement`."""
    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            stmt = buf.strip()
            if _has_code(stmt):
                statements.append(stmt)
            buf = ""
    if _has_code(buf):
        statements.append(buf.strip())
    return statements


def _has_code(sql: str) -> bool:
    lines = [ln.split("--", 1)[0].strip() for ln in sql.splitlines()]
    return any(ln and ln != ";" for ln in lines)


def _sqlite_path(db: Database) -> str:
    path = make_url(db.url).database
    if not path or path == ":memory:":
        raise MigrationError("feature migrations need a D1 database file")
    return path


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions, so BEGIN/COMMIT below cover the DDL too
    # (the sqlite3 module would otherwise commit before each CREATE TABLE).
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(_CREATE_TRACKING)
    conn.execute(_CREATE_OBJECTS)
    return conn


def _applied(conn: sqlite3.Connection, feature_id: str) -> dict[str, str]:
    rows = conn.execute("SELECT name, checksum FROM _nno_migrations WHERE feature = ?", (feature_id,))
    return {name: checksum for name, checksum in rows.fetchall()}


async def applied(db: Database, feature_id: str) -> dict[str, str]:
    """{file name: checksum} applied for `feature_id` on this D1."""
    if not db.is_sqlite:
        async with db.engine.begin() as conn:
            await _pg_prepare(conn, db)
            return await _pg_applied(conn, feature_id)
    path = _sqlite_path(db)

    def run() -> dict[str, str]:
        with closing(_connect(path)) as conn:
            return _applied(conn, feature_id)

    return await asyncio.to_thread(run)


def _apply(path: str, migrations: list[Migration], feature_id: str, prefix: str) -> list[str]:
    ran: list[str] = []
    with closing(_connect(path)) as conn:
        for mig in migrations:
            rendered = mig.sql.replace(TABLE_PREFIX_PLACEHOLDER, prefix)
            checksum = hashlib.sha256(rendered.encode()).hexdigest()
            conn.execute("BEGIN IMMEDIATE")  # one writer at a time; re-read what is applied under it
            try:
                done = _applied(conn, feature_id)
                if mig.name in done:
                    conn.execute("ROLLBACK")
                    if done[mig.name] != checksum:
                        raise MigrationError(f"{feature_id} migration {mig.name} was changed after it was applied")
                    continue
                before = set(conn.execute(_OBJECTS).fetchall())
                for stmt in split_statements(rendered):
                    conn.execute(stmt)
                conn.executemany("INSERT OR IGNORE INTO _nno_migration_objects (feature, type, name) VALUES (?, ?, ?)",
                                 [(feature_id, t, n) for t, n in set(conn.execute(_OBJECTS).fetchall()) - before])
                conn.execute("INSERT INTO _nno_migrations (feature, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                             (feature_id, mig.name, checksum, now_ms()))
                conn.execute("COMMIT")
            except MigrationError:
                raise
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise MigrationError(f"{feature_id} migration {mig.name} failed: {exc}") from exc
            ran.append(mig.name)
    return ran


async def apply_migrations(db: Database, directory: Path, feature_id: str, *, prefix: str = "") -> list[str]:
    """Apply the files not applied yet, in order, each in its own transaction; returns their names."""
    migrations = load_migrations(directory)
    if not db.is_sqlite:
        return await _pg_apply(db, migrations, feature_id, prefix)
    return await asyncio.to_thread(_apply, _sqlite_path(db), migrations, feature_id, prefix)


async def drop_feature_data(db: Database, feature_id: str) -> list[str]:
    """Drop what the feature's migrations created and forget them (its data is deleted; a new
    activation starts over), in one transaction; the other features of a shared D1 keep theirs."""
    if not db.is_sqlite:
        return await _pg_drop(db, feature_id)
    path = _sqlite_path(db)

    def run() -> list[str]:
        with closing(_connect(path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute("SELECT type, name FROM _nno_migration_objects WHERE feature = ?",
                                    (feature_id,)).fetchall()
                order = {"trigger": 0, "view": 1, "table": 2}
                dropped = []
                for kind, name in sorted(rows, key=lambda r: order.get(r[0], 3)):
                    quoted = '"' + name.replace('"', '""') + '"'
                    conn.execute(f"DROP {kind.upper()} IF EXISTS {quoted}")
                    dropped.append(name)
                conn.execute("DELETE FROM _nno_migration_objects WHERE feature = ?", (feature_id,))
                conn.execute("DELETE FROM _nno_migrations WHERE feature = ?", (feature_id,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return dropped

    return await asyncio.to_thread(run)


# ---- PostgreSQL (a D1 of a scaled installation) ---------------------------------------------------
_PG_TRACKING = (
    "CREATE TABLE IF NOT EXISTS _nno_migrations (feature TEXT NOT NULL, name TEXT NOT NULL, "
    "checksum TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (feature, name))"
)
_PG_OBJECTS = (
    "SELECT CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END, c.relname FROM pg_class c "
    "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"
)
# SQLite's integers are 64-bit whatever their declared name; PostgreSQL's INTEGER is 32-bit.
_INTEGER_TYPES = {sqlglot.exp.DataType.Type.INT, sqlglot.exp.DataType.Type.SMALLINT,
                  sqlglot.exp.DataType.Type.TINYINT, sqlglot.exp.DataType.Type.MEDIUMINT}


def to_postgres(statement: str) -> str:
    """One SQLite statement in PostgreSQL's dialect."""
    try:
        parsed = sqlglot.parse_one(statement, read="sqlite")
    except sqlglot.errors.ParseError as exc:
        raise MigrationError(f"cannot translate for PostgreSQL: {exc}") from exc

    exp = sqlglot.exp
    # A column `INTEGER PRIMARY KEY` is SQLite's rowid: given the next number when not set.
    for column in parsed.find_all(exp.ColumnDef):
        kinds = {type(c.args.get("kind")) for c in column.constraints}
        is_int = isinstance(column.kind, exp.DataType) and column.kind.this in _INTEGER_TYPES
        if is_int and exp.PrimaryKeyColumnConstraint in kinds and exp.AutoIncrementColumnConstraint not in kinds:
            column.append("constraints", exp.ColumnConstraint(kind=exp.AutoIncrementColumnConstraint()))

    def widen(node: sqlglot.exp.Expression) -> sqlglot.exp.Expression:
        if isinstance(node, exp.DataType) and node.this in _INTEGER_TYPES:
            return exp.DataType.build("BIGINT")
        return node

    return parsed.transform(widen).sql(dialect="postgres")


async def _pg_prepare(conn: AsyncConnection, db: Database) -> None:
    # One migrating transaction per D1 at a time, across processes; released at its end.
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"nno-d1-migrate:{db.schema}"})
    await conn.exec_driver_sql(_PG_TRACKING)
    await conn.exec_driver_sql(_CREATE_OBJECTS)


async def _pg_applied(conn: AsyncConnection, feature_id: str) -> dict[str, str]:
    rows = await conn.execute(text("SELECT name, checksum FROM _nno_migrations WHERE feature = :f"),
                              {"f": feature_id})
    return {name: checksum for name, checksum in rows.all()}


async def _pg_apply(db: Database, migrations: list[Migration], feature_id: str, prefix: str) -> list[str]:
    ran: list[str] = []
    for mig in migrations:
        rendered = mig.sql.replace(TABLE_PREFIX_PLACEHOLDER, prefix)
        checksum = hashlib.sha256(rendered.encode()).hexdigest()
        statements = [to_postgres(stmt) for stmt in split_statements(rendered)]
        try:
            async with db.engine.begin() as conn:
                await _pg_prepare(conn, db)
                done = await _pg_applied(conn, feature_id)
                if mig.name in done:
                    if done[mig.name] != checksum:
                        raise MigrationError(f"{feature_id} migration {mig.name} was changed after it was applied")
                    continue
                before = set((await conn.execute(text(_PG_OBJECTS))).all())
                for stmt in statements:
                    await conn.exec_driver_sql(stmt)
                made = set((await conn.execute(text(_PG_OBJECTS))).all()) - before
                for kind, name in sorted(made):
                    await conn.execute(text("INSERT INTO _nno_migration_objects (feature, type, name) "
                                            "VALUES (:f, :t, :n) ON CONFLICT DO NOTHING"),
                                       {"f": feature_id, "t": kind, "n": name})
                await conn.execute(text("INSERT INTO _nno_migrations (feature, name, checksum, applied_at) "
                                        "VALUES (:f, :n, :c, :at)"),
                                   {"f": feature_id, "n": mig.name, "c": checksum, "at": now_ms()})
        except DBAPIError as exc:
            raise MigrationError(f"{feature_id} migration {mig.name} failed: {exc.orig}") from exc
        ran.append(mig.name)
    return ran


async def _pg_drop(db: Database, feature_id: str) -> list[str]:
    async with db.engine.begin() as conn:
        await _pg_prepare(conn, db)
        rows = (await conn.execute(text("SELECT type, name FROM _nno_migration_objects WHERE feature = :f"),
                                   {"f": feature_id})).all()
        dropped: list[str] = []
        for kind in ("view", "table"):
            found = sorted(name for t, name in rows if t == kind)
            if found:  # together, so foreign keys between the feature's own tables do not block
                names = ", ".join('"' + n.replace('"', '""') + '"' for n in found)
                await conn.exec_driver_sql(f"DROP {kind.upper()} IF EXISTS {names}")
                dropped += found
        await conn.execute(text("DELETE FROM _nno_migration_objects WHERE feature = :f"), {"f": feature_id})
        await conn.execute(text("DELETE FROM _nno_migrations WHERE feature = :f"), {"f": feature_id})
    return dropped
