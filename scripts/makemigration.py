"""Autogenerate an Alembic revision for one service against a scratch SQLite database.

Usage: python scripts/makemigration.py iam "initial tables"
The scratch database is first brought to head, so the new revision holds only the model changes.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection

from nno.kernel.db import Database, sqlite_url
from nno.kernel.migrations import alembic_config, upgrade


async def main(service: str, message: str) -> None:
    package = importlib.import_module(f"nno.{service}")
    migrations_dir = Path(package.__file__).parent / "migrations"  # type: ignore[arg-type]
    (migrations_dir / "versions").mkdir(parents=True, exist_ok=True)
    importlib.import_module(f"nno.{service}.models")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(sqlite_url(Path(tmp) / "scratch.db"))
        await upgrade(db, migrations_dir)
        cfg = alembic_config(migrations_dir)

        def _rev(sync_conn: Connection) -> None:
            cfg.attributes["connection"] = sync_conn
            command.revision(cfg, message=message, autogenerate=True)

        async with db.engine.begin() as conn:
            await conn.run_sync(_rev)
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "change"))
