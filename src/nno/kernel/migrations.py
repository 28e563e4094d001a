"""Alembic migrations per service, run programmatically on SQLite and PostgreSQL alike.

Each service keeps `migrations/` (with `env.py` calling `run_env`) and `migrations/versions/`.
`scripts/makemigration.py SERVICE "message"` autogenerates a revision against a scratch database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from nno.kernel.aio import loop_lock
from nno.kernel.db import Database


def alembic_config(migrations_dir: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    return cfg


async def upgrade(db: Database, migrations_dir: Path, revision: str = "head") -> None:
    """Bring `db` to `revision`. Safe to call on every start: a no-op when already current."""
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
    async with loop_lock("alembic-upgrade"):
        async with db.engine.begin() as conn:
            if not db.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                   {"k": f"nno-migrate:{db.schema or ''}"})
            await conn.run_sync(_run)


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
