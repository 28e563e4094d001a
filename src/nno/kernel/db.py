"""Per-service databases: one SQLite file per service (embedded) or one PostgreSQL schema per
service (scaled), behind the same async SQLAlchemy 2 engine and session factory.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import structlog
from sqlalchemy import TextClause, event, false, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import InstrumentedAttribute

from nno.kernel.config import Settings

log = structlog.get_logger("nno.db")

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_BUSY_TIMEOUT_MS = 30_000
_WRITER_WAIT_S = _BUSY_TIMEOUT_MS / 1000  # as long as SQLite's own busy timeout
_SQLITE_BUSY = ("database is locked", "database is busy")


def async_url(url: str) -> str:
    """Accept the plain URLs people write (`postgresql://`, `sqlite:///`) and pick the async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


async def transaction_lock(session: AsyncSession, key: str, anchor: InstrumentedAttribute[Any]) -> None:
    """Serialise, for the rest of the transaction, the transactions that take the same `key` (checks
    that count rows before a write, where two at once would both pass). PostgreSQL: a transaction
    advisory lock on the key, taken before the count, whose statements then see every commit made
    meanwhile. SQLite: a write that matches no row (of `anchor`'s table) queues for the writer lock,
    this process's and then the file's, which serialises every writer of the file."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
    else:
        await session.execute(update(anchor.class_).where(false()).values({anchor.key: anchor})
                              .execution_options(synchronize_session=False))


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
        self.checkpoints: WalCheckpoints | None = None
        if self.is_sqlite:
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self.checkpoints = WalCheckpoints(path)
                # Every pooled connection is a thread and a file handle; keeping enough of them idle
                # means a burst of requests never pays for opening connections (and pragmas) again.
                kwargs.update(pool_size=20, max_overflow=40)
            kwargs["connect_args"] = {"timeout": _BUSY_TIMEOUT_MS / 1000,
                                      "async_creator_fn": partial(_connect_sqlite, self.checkpoints)}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)
            if self.schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": self.schema}}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        session_class: type[AsyncSession] = AsyncSession
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas)
            event.listen(self.engine.sync_engine, "checkin", _disown)
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
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
                if self.is_sqlite:
                    await session.flush()  # queues for the writer lock first when something is pending
            if isinstance(session, WriterQueuedSession):
                session.release_writer()  # committed: the next writer need not wait for the close

    async def dispose(self) -> None:
        if self.checkpoints is not None:
            await self.checkpoints.wait()
        await self.engine.dispose()



def _is_write(statement: Any) -> bool:
    if isinstance(statement, TextClause):
        return statement.text.lstrip()[:7].upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))
    return bool(getattr(statement, "is_dml", False))


# What an owning writer runs on the loop; anything else (executescript, backup, ...) keeps the thread.
_INLINE_CALLS = frozenset(("execute", "executemany", "fetchone", "fetchmany", "fetchall", "rollback"))


class LoopConnection(aiosqlite.Connection):
    """An aiosqlite connection that skips its thread where the thread only adds waiting.

    aiosqlite runs each call (cursor, execute, fetch, close: three or four per statement) on the
    connection's own thread and wakes the event loop with the result. Under load each of those hops
    waits for a full turn of a busy loop, and a writer makes them while every other writer of the
    file waits for it: the writer lock's hold time, not SQLite, bounded tenant creates to ~40/s.

    - The task holding the writer lock (`WriterQueuedSession`) owns its connection, and its calls
      run on the loop: statements on a local WAL file take microseconds and cannot wait on another
      writer of this process (there is none). Another process may hold the file, so an inline
      statement runs with a zero busy timeout and, if refused (it then changed nothing), runs again
      on the thread under the usual timeout. Its commit runs on the loop too: in WAL mode with
      `synchronous=NORMAL` a commit appends to the WAL without an fsync, and the checkpoints that
      do sync run on a thread (`WalCheckpoints`), not in the commit.
    - Anyone's cursor creation and cursor close run on the loop (they never touch the file), and a
      commit or rollback with no transaction open (a read's) is skipped, as sqlite3 itself would.
    - Everything else (other sessions' statements and fetches) stays on the thread, where a slow
      query holds up nobody else.
    """

    owner: asyncio.Task[Any] | None = None
    checkpoints: WalCheckpoints | None = None

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        conn = self._connection
        if conn is None:
            return await super()._execute(fn, *args, **kwargs)  # closed: aiosqlite's own error
        name = getattr(fn, "__name__", None)
        if name == "cursor" or (name == "close" and isinstance(getattr(fn, "__self__", None), sqlite3.Cursor)):
            return fn(*args, **kwargs)
        if self.owner is None or self.owner is not asyncio.current_task() or name not in _INLINE_CALLS:
            return await super()._execute(fn, *args, **kwargs)
        if name not in ("execute", "executemany"):
            return fn(*args, **kwargs)  # fetches of a running statement, rollback: no lock to wait for
        conn.execute("PRAGMA busy_timeout=0")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith(_SQLITE_BUSY):
                raise
        finally:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        return await super()._execute(fn, *args, **kwargs)

    async def commit(self) -> None:
        conn = self._connection
        if conn is not None and not conn.in_transaction:
            return  # what sqlite3's commit would do, without the trip to the thread
        wal = self.checkpoints
        if (conn is not None and self.owner is not None and self.owner is asyncio.current_task()
                and wal is not None and not wal.restart_pending):
            conn.commit()
        else:
            if wal is not None:
                wal.restart_pending = False
            await super()._execute(self._conn.commit)
        if wal is not None:
            wal.committed()

    async def rollback(self) -> None:
        conn = self._connection
        if conn is not None and not conn.in_transaction:
            return
        await super().rollback()


class WalCheckpoints:
    """WAL checkpoints of one SQLite file, run on a thread rather than in a commit.

    SQLite checkpoints in whichever commit finds the WAL past 1000 pages, copying pages into the
    database and syncing both files: tens of milliseconds that would block the event loop for a
    commit run on it. This process's connections turn that off (`wal_autocheckpoint=0`) and a
    passive checkpoint runs on a thread every `EVERY` commits instead (one at a time; writers go
    on meanwhile). The first commit after a complete checkpoint starts the WAL over and syncs its
    header, so that one commit goes to the connection's thread.
    """

    EVERY = 100

    def __init__(self, path: str) -> None:
        self.path = path
        self.commits = 0
        self.restart_pending = False
        self._running: asyncio.Task[None] | None = None

    def committed(self) -> None:
        self.commits += 1
        if self.commits >= self.EVERY and (self._running is None or self._running.done()):
            self.commits = 0
            self._running = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            busy, frames, copied = await asyncio.to_thread(self.checkpoint)
        except sqlite3.Error as exc:  # the next round tries again; SQLite also checkpoints at close
            log.warning("wal_checkpoint_failed", path=self.path, error=str(exc))
            return
        if not busy and frames == copied:
            self.restart_pending = True

    def checkpoint(self) -> tuple[int, int, int]:
        with closing(sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000)) as conn:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(busy), int(frames), int(copied)

    async def wait(self) -> None:
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)


def _connect_sqlite(checkpoints: WalCheckpoints | None, database: str, **kwargs: Any) -> LoopConnection:
    """aiosqlite's `connect`, making a `LoopConnection` (used from the loop's thread and its own)."""
    kwargs["check_same_thread"] = False

    def connector() -> sqlite3.Connection:
        conn = sqlite3.connect(database, **kwargs)
        if checkpoints is not None:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    conn = LoopConnection(connector, 64)
    conn.checkpoints = checkpoints
    thread: Any = getattr(conn, "_thread", conn)  # aiosqlite < 0.22: the connection is the thread
    thread.daemon = True  # as SQLAlchemy does: never holds up interpreter exit
    return conn


def _disown(dbapi_connection: Any, _record: Any) -> None:
    """Back in the pool, a connection runs its calls on its thread again, whoever used it last."""
    driver = getattr(dbapi_connection, "_connection", None)
    if isinstance(driver, LoopConnection):
        driver.owner = None


class WriterQueuedSession(AsyncSession):
    """SQLite lets one transaction write a file at a time, and the others wait in its busy handler:
    a sleep-and-poll loop that is slow and unfair under load (a tenant create at p99 took seconds with
    20 clients). The sessions of one process queue instead, in order, for an asyncio lock per database,
    taken before their first write and held until the transaction ends (its commit or rollback).
    Reads do not queue. While it holds the lock, the session's statements run on the event loop
    (`LoopConnection`), so the lock is held for the time SQLite needs, not for turns of the loop.
    Other processes on the same file still meet SQLite's busy timeout.

    So a write transaction should do its reads, checks and calls to other services before its first
    write, and await nothing but the database after it: every writer of the file waits meanwhile.
    """

    writer_lock: asyncio.Lock
    _holds_writer_lock = False
    _owned: LoopConnection | None = None

    def _pending(self) -> bool:
        return bool(self.new or self.deleted or self.dirty)

    async def _queue_for_writer(self) -> None:
        if self._holds_writer_lock:
            return
        # Not `wait_for`: on Python 3.11 it runs the acquire in a task of its own, so the lock passes
        # to that task and only a loop turn later to this one, idle in between.
        try:
            async with asyncio.timeout(_WRITER_WAIT_S):
                await self.writer_lock.acquire()
        except TimeoutError as exc:
            raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")) from exc
        self._holds_writer_lock = True
        try:
            driver = (await (await self.connection()).get_raw_connection()).driver_connection
        except BaseException:
            self.release_writer()
            raise
        if isinstance(driver, LoopConnection):
            driver.owner = asyncio.current_task()
            self._owned = driver

    def release_writer(self) -> None:
        """Give up the writer lock (and the connection's inline mode). Only after the transaction
        has ended: its commit or rollback is what frees the file for the next writer."""
        if self._owned is not None:
            self._owned.owner = None
            self._owned = None
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
            self.release_writer()


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process loses nothing,
    # a power cut may lose the last transactions (never corrupts the file). Commits stop costing an
    # fsync each while the one writer holds the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    # Reads served from the page cache and a memory map rather than read() calls; both grow only as
    # pages are touched, so an idle database costs nothing.
    cursor.execute("PRAGMA cache_size=-8192")  # KiB: 8 MiB per connection instead of 2
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()
