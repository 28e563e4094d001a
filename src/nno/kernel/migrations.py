"""Alembic migrations per service, run programmatically on SQLite and PostgreSQL alike.

Each service keeps `migrations/` (with `env.py` calling `run_env`) and `migrations/versions/`.
`scripts/makemigration.py SERVICE "message"` autogenerates a revision against a scratch database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from nno.kernel.aio import loop_lock
from nno.kernel.db import Database, sqlite_pragmas


def alembic_config(migrations_dir: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    return cfg


def transactional_sqlite_engine(url: str) -> AsyncEngine:
    """An engine on a SQLite file whose transactions cover DDL too.

    Python's sqlite3 (and aiosqlite on it) begins a transaction only before INSERT/UPDATE/DELETE, so a
    CREATE TABLE runs autocommitted: a process killed mid-migration would leave tables without their
    `alembic_version` row, and every retry would fail on "table already exists". Here the driver's
    own transaction handling is off and every SQLAlchemy transaction is one `BEGIN IMMEDIATE` (which
    also makes two processes migrating one file wait for each other instead of interleaving).
    """
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        sqlite_pragmas(dbapi_connection, record)

    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine.sync_engine, "connect", _connect)
    event.listen(engine.sync_engine, "begin", _begin)
    return engine


async def upgrade(db: Database, migrations_dir: Path, revision: str = "head") -> None:
    """Bring `db` to `revision` in one transaction: a crash at any point leaves the database as it
    was, so the next start simply runs it again. A no-op when already current."""
    await db.ensure_schema()
    cfg = alembic_config(migrations_dir)

    def _run(sync_conn: Connection) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    # Alembic keeps the running migration in module-global proxies (`alembic.context`), and
    # run_sync interleaves coroutines at every DBAPI call: two upgrades at once in one process
    # (e.g. two provisioning jobs migrating two platforms' auth D1s) would clobber each other.
    # Across processes (`nno serve` and `nno worker` starting together), PostgreSQL serialises the
    # upgrade of one schema with a transaction-scoped advisory lock.
    in_memory = db.is_sqlite and make_url(db.url).database in (None, "", ":memory:")
    engine = transactional_sqlite_engine(db.url) if db.is_sqlite and not in_memory else db.engine
    try:
        async with loop_lock("alembic-upgrade"):
            async with engine.begin() as conn:
                if not db.is_sqlite:
                    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                       {"k": f"nno-migrate:{db.schema or ''}"})
                await conn.run_sync(_run)
    finally:
        if engine is not db.engine:
            await engine.dispose()


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py`."""
    connection: Any = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("NNO migrations run through nno.kernel.migrations.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER TABLE
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
