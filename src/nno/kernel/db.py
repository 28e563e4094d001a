"""Per-service databases: one SQLite file per service (embedded) or one PostgreSQL schema per
service (scaled), behind the same async SQLAlchemy 2 engine and session factory.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import TextClause, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from nno.kernel.config import Settings

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def async_url(url: str) -> str:
    """Accept the plain URLs people write (`postgresql://`, `sqlite:///`) and pick the async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class Database:
    """An async engine plus session factory for one service (or one provisioned D1)."""

    def __init__(self, url: str, schema: str | None = None, echo: bool = False, *, manage_schema: bool = True,
                 pool_size: int = 10, max_overflow: int = 20) -> None:
        self.url = async_url(url)
        # False: the schema is made by someone else (a D1's, owned by a role that may not create one).
        self.manage_schema = manage_schema
        self.is_sqlite = self.url.startswith("sqlite")
        self.schema = schema if not self.is_sqlite else None
        if self.schema is not None and not _SCHEMA_RE.match(self.schema):
            raise ValueError(f"invalid schema name {self.schema!r}")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)
            if self.schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": self.schema}}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        session_class: type[AsyncSession] = AsyncSession
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas)
            session_class = type("SQLiteSession", (WriterQueuedSession,), {"writer_lock": asyncio.Lock()})
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, class_=session_class)

    @classmethod
    def for_service(cls, settings: Settings, service: str) -> Database:
        """The database a core service uses under the current configuration."""
        if settings.database_url:
            return cls(settings.database_url, schema=service.replace("-", "_"))
        return cls(sqlite_url(settings.data_dir.resolve() / f"{service}.db"))

    async def ensure_schema(self) -> None:
        if self.schema and self.manage_schema:
            # A separate engine without the search_path so CREATE SCHEMA works before it exists.
            bootstrap = create_async_engine(self.url)
            try:
                async with bootstrap.begin() as conn:
                    # Two processes starting on a fresh database would race CREATE SCHEMA IF NOT
                    # EXISTS into a unique violation; the transaction lock serialises them.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                       {"k": f"nno-schema:{self.schema}"})
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            finally:
                await bootstrap.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error."""
        async with self.sessionmaker() as session, session.begin():
            yield session
            if self.is_sqlite:
                await session.flush()  # queues for the writer lock first when something is pending

    async def dispose(self) -> None:
        await self.engine.dispose()


_WRITER_WAIT_S = 30.0  # as long as SQLite's own busy timeout


def _is_write(statement: Any) -> bool:
    if isinstance(statement, TextClause):
        return statement.text.lstrip()[:7].upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))
    return bool(getattr(statement, "is_dml", False))


class WriterQueuedSession(AsyncSession):
    """SQLite lets one transaction write a file at a time, and the others wait in its busy handler:
    a sleep-and-poll loop that is slow and unfair under load (a tenant create at p99 took seconds with
    20 clients). The sessions of one process queue instead, in order, for an asyncio lock per database,
    taken before their first write and held until the session ends (its commit). Reads do not queue.
    Other processes on the same file still meet SQLite's busy timeout."""

    writer_lock: asyncio.Lock
    _holds_writer_lock = False

    def _pending(self) -> bool:
        return bool(self.new or self.deleted or self.dirty)

    async def _queue_for_writer(self) -> None:
        if self._holds_writer_lock:
            return
        try:
            await asyncio.wait_for(self.writer_lock.acquire(), _WRITER_WAIT_S)
        except TimeoutError as exc:
            raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")) from exc
        self._holds_writer_lock = True

    def _release_writer(self) -> None:
        if self._holds_writer_lock:
            self._holds_writer_lock = False
            self.writer_lock.release()

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if self._pending() or _is_write(statement):  # a pending change would be autoflushed first
            await self._queue_for_writer()
        return await super().execute(statement, *args, **kwargs)

    async def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if self._pending() or _is_write(statement):
            await self._queue_for_writer()
        return await super().scalar(statement, *args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        if self._pending():
            await self._queue_for_writer()
        return await super().get(*args, **kwargs)

    async def flush(self, objects: Any = None) -> None:
        if self._pending():
            await self._queue_for_writer()
        await super().flush(objects)

    async def commit(self) -> None:
        if self._pending():
            await self._queue_for_writer()
        await super().commit()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._release_writer()


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process loses nothing,
    # a power cut may lose the last transactions (never corrupts the file). Commits stop costing an
    # fsync each while the one writer holds the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
