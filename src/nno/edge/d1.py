"""Where a D1 database lives: a SQLite file under `{data_dir}/cloud/d1/` (embedded), or a
PostgreSQL schema of its own in the installation's database (scaled, `NNO_DATABASE_URL`), so processes
on different hosts share D1s through PostgreSQL alone.

On PostgreSQL each D1 has a login role of its own that owns its schema and nothing else: a Worker's
binding connects as that role with `search_path` set to the schema, so its SQL (even a
schema-qualified name, or a `RESET ROLE`) cannot reach another D1, a service's schema or the local
cloud's state. The role's password is derived from the installation's database password, so every
process finds it without storing it. The installation's database user therefore needs `CREATEROLE`.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from nno.kernel.db import Database, async_url

SCHEMA_PREFIX = "d1_"
SNAPSHOT_PREFIX = "d1snap_"
ROLE_PREFIX = "nno_d1_"
# A Worker instance holds one engine per D1 binding; many platforms' Workers share one PostgreSQL.
D1_POOL_SIZE = 1
D1_MAX_OVERFLOW = 4


class D1Missing(LookupError):
    """The D1 has no schema and role (never made, or deleted)."""


def _digest(value: str, size: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:size]


def d1_schema(name: str) -> str:
    """`d1_` + the D1's name with `-` as `_` (names have no `_`, so distinct names stay distinct);
    names too long for a PostgreSQL identifier keep their start and a digest of the whole."""
    schema = SCHEMA_PREFIX + name.replace("-", "_")
    if len(schema) > 63:
        schema = f"{schema[:46]}_{_digest(name, 16)}"
    return schema


def role_prefix(database: str) -> str:
    """Roles are cluster-wide: each database's D1 roles carry a digest of its name, so two
    installations (or two test databases) on one cluster never share a role."""
    return f"{ROLE_PREFIX}{_digest(database, 8)}_"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresD1:
    """The D1s of one installation on PostgreSQL, managed through `admin` (the installation's own
    connection, which may create roles and schemas)."""

    def __init__(self, admin: Database) -> None:
        self.admin = admin
        url = make_url(admin.url)
        self.url = url
        self.database = url.database or ""
        self._secret = f"{url.password or ''}/{self.database}".encode()
        self._passwords_set: set[str] = set()

    def role(self, name: str) -> str:
        return role_prefix(self.database) + _digest(d1_schema(name), 24)

    def _password(self, role: str) -> str:
        return hmac.new(self._secret, role.encode(), hashlib.sha256).hexdigest()

    async def _ensure_role(self, conn: AsyncConnection, role: str) -> None:
        exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        verb = "ALTER" if exists else "CREATE"
        # The password is hex: no quoting question. NOINHERIT/NOCREATEDB etc. are the defaults.
        await conn.execute(text(f"{verb} ROLE {_quote(role)} LOGIN PASSWORD '{self._password(role)}'"))
        # PUBLIC may connect unless an operator revoked it. A GRANT rewrites the database's one
        # catalogue row: two at once fail ("tuple concurrently updated"), so they take turns.
        if not await conn.scalar(text("SELECT has_database_privilege(:r, current_database(), 'CONNECT')"),
                                 {"r": role}):
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('nno-d1-grant-connect'))"))
            await conn.execute(text(f"GRANT CONNECT ON DATABASE {_quote(self.database)} TO {_quote(role)}"))

    async def ensure(self, name: str) -> bool:
        """Create the D1's role and schema when missing; True when the schema was created."""
        schema, role = d1_schema(name), self.role(name)
        async with self.admin.engine.begin() as conn:
            # One CREATE ROLE/SCHEMA at a time per D1 across processes (a retry racing a first try).
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"nno-d1:{schema}"})
            await self._ensure_role(conn, role)
            found = await conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema})
            if not found:
                await conn.execute(text(f"CREATE SCHEMA {_quote(schema)} AUTHORIZATION {_quote(role)}"))
        self._passwords_set.add(role)
        return not found

    async def exists(self, name: str) -> bool:
        async with self.admin.engine.connect() as conn:
            found = await conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"),
                                      {"s": d1_schema(name)})
        return bool(found)

    async def orphans(self, platform_id: str, known: set[str]) -> list[tuple[str, str]]:
        """(name, schema) of the platform's D1 schemas that `known` does not hold (a crash between
        making the schema and recording it). A schema whose name was shortened cannot name its D1
        and is left out."""
        pattern = (SCHEMA_PREFIX + platform_id.replace("-", "_") + "_").replace("_", r"\_") + "%"
        async with self.admin.engine.connect() as conn:
            schemas = (await conn.scalars(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                                          {"p": pattern})).all()
        out = []
        for schema in schemas:
            name = schema[len(SCHEMA_PREFIX):].replace("_", "-")
            if d1_schema(name) == schema and name not in known:
                out.append((name, schema))
        return out

    async def delete(self, name: str) -> None:
        schema, role = d1_schema(name), self.role(name)
        async with self.admin.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"nno-d1:{schema}"})
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE"))
            snapshots = (await conn.scalars(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                                            {"p": f"{SNAPSHOT_PREFIX}{_digest(schema, 12)}_%"})).all()
            for snap in snapshots:
                await conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(snap)} CASCADE"))
            if await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}):
                # Whatever else the role was granted or owns in this database goes with it.
                await conn.execute(text(f"DROP OWNED BY {_quote(role)} CASCADE"))
                await conn.execute(text(f"DROP ROLE {_quote(role)}"))
        self._passwords_set.discard(role)

    async def database_for(self, name: str) -> Database:
        """A handle on the D1 as its own role, confined to its schema. Sets the role's password
        once per process (it may predate a change of the installation's database password).
        Raises `D1Missing` for a D1 that does not exist (never made again behind its row's back)."""
        role = self.role(name)
        if role not in self._passwords_set:
            async with self.admin.engine.begin() as conn:
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                   {"k": f"nno-d1:{d1_schema(name)}"})
                if not await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}):
                    raise D1Missing(name)
                await self._ensure_role(conn, role)
            self._passwords_set.add(role)
        url = self.url.set(username=role, password=self._password(role))
        return Database(url.render_as_string(hide_password=False), schema=d1_schema(name),
                        manage_schema=False, pool_size=D1_POOL_SIZE, max_overflow=D1_MAX_OVERFLOW)

    # ---- snapshots (a stack upgrade's undo) -------------------------------------------------
    def _snapshot_schema(self, name: str, snapshot: str) -> str:
        return f"{SNAPSHOT_PREFIX}{_digest(d1_schema(name), 12)}_{snapshot.lower()[:32]}"

    async def snapshot(self, name: str, snapshot: str) -> bool:
        """Copy the D1's tables (rows, defaults, constraints, indexes, foreign keys) and views into
        a snapshot schema; False when the D1 does not exist."""
        source, role = d1_schema(name), self.role(name)
        target = self._snapshot_schema(name, snapshot)
        async with self.admin.engine.begin() as conn:
            if not await conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": source}):
                return False
            await conn.execute(text(f"CREATE SCHEMA {_quote(target)} AUTHORIZATION {_quote(role)}"))
            await _copy_schema(conn, source, target)
        return True

    async def has_snapshot(self, name: str, snapshot: str) -> bool:
        async with self.admin.engine.connect() as conn:
            found = await conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"),
                                      {"s": self._snapshot_schema(name, snapshot)})
        return bool(found)

    async def restore(self, name: str, snapshot: str) -> None:
        """Put the D1 back as it was at the snapshot, in one transaction (the snapshot stays)."""
        schema, role = d1_schema(name), self.role(name)
        async with self.admin.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"nno-d1:{schema}"})
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(schema)} CASCADE"))
            await conn.execute(text(f"CREATE SCHEMA {_quote(schema)} AUTHORIZATION {_quote(role)}"))
            await _copy_schema(conn, self._snapshot_schema(name, snapshot), schema)

    async def drop_snapshot(self, name: str, snapshot: str) -> None:
        async with self.admin.engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(self._snapshot_schema(name, snapshot))} CASCADE"))


async def _copy_schema(conn: AsyncConnection, source: str, target: str) -> None:
    """Tables with their rows, then foreign keys and views, from `source` into the empty `target`;
    objects are owned by `target`'s owner. Definitions are printed with `source` on the search path
    so they name its tables unqualified, then run with `target` on it."""
    owner = await conn.scalar(text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :s"),
                              {"s": target})
    tables = (await conn.scalars(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind IN ('r', 'p') ORDER BY c.relname"), {"s": source})).all()
    for table in tables:
        src, dst = f"{_quote(source)}.{_quote(table)}", f"{_quote(target)}.{_quote(table)}"
        await conn.execute(text(f"CREATE TABLE {dst} (LIKE {src} INCLUDING ALL)"))
        await conn.execute(text(f"INSERT INTO {dst} OVERRIDING SYSTEM VALUE SELECT * FROM {src}"))  # noqa: S608
        await conn.execute(text(f"ALTER TABLE {dst} OWNER TO {owner}"))
    await conn.execute(text(f"SET LOCAL search_path TO {_quote(source)}"))
    fkeys = (await conn.execute(text(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND k.contype = 'f' ORDER BY c.relname, k.conname"), {"s": source})).all()
    views = (await conn.execute(text(
        "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind = 'v' ORDER BY c.oid"), {"s": source})).all()
    await conn.execute(text(f"SET LOCAL search_path TO {_quote(target)}"))
    for table, constraint, definition in fkeys:
        await conn.execute(text(f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(constraint)} {definition}"))
    for view, definition in views:
        await conn.execute(text(f"CREATE VIEW {_quote(view)} AS {definition}"))
        await conn.execute(text(f"ALTER VIEW {_quote(view)} OWNER TO {owner}"))


def create_sqlite_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()


def remove_sqlite_file(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


async def drop_roles_of(admin_url: str, database: str) -> None:
    """Drop the D1 roles of `database` left after it was dropped (tests drop whole databases;
    roles outlive them, being cluster-wide)."""
    import asyncpg

    conn = await asyncpg.connect(async_url(admin_url).replace("postgresql+asyncpg://", "postgresql://"))
    try:
        roles = await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1",
                                 role_prefix(database).replace("_", r"\_") + "%")
        for row in roles:
            await conn.execute(f"DROP ROLE IF EXISTS {_quote(row['rolname'])}")
    finally:
        await conn.close()

