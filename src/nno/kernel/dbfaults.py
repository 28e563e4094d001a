"""Database blips seen by a service: a connection dropped under a request (PostgreSQL restarted, a
backend terminated, a network cut) or a SQLite file busy beyond its timeout.

- Such a failure answers 503 `SERVICE_UNAVAILABLE` with `Retry-After` (never a 500): the
  transaction was rolled back, so a write that failed this way did not commit and may be sent again.
- An idempotent read (GET, HEAD) is run once more first, on a fresh connection (the pool drops the
  dead one, and pre-ping checks the others), so a blip is usually invisible.
- Each failure is logged once, as a warning.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import structlog
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.kernel.errors import UNSTORABLE_MESSAGE, error_response, unstorable_input

log = structlog.get_logger("nno.db")

RETRY_AFTER_S = 1
# Set by the handler on its 503, read and removed by `DatabaseRetryMiddleware`: never leaves a service.
_MARKER = "x-nno-db-unavailable"
_B_MARKER = _MARKER.encode()
_IDEMPOTENT = frozenset({"GET", "HEAD"})
# SQLSTATE classes of a lost connection: 08 connection exception, 57P01-57P03 admin shutdown,
# crash shutdown, cannot connect now.
_LOST_STATES = ("08", "57P01", "57P02", "57P03")
_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached or used right now, rather than that
    the query or its data was wrong."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and state.startswith(_LOST_STATES):
            return True
        name = type(current).__name__
        if type(current).__module__.startswith("asyncpg") and name in (
                "ConnectionDoesNotExistError", "InterfaceError", "InternalClientError"):
            return True
        if isinstance(current, sqlite3.OperationalError) and str(current).startswith(_SQLITE_BUSY):
            return True
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def _summary(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class LoopFailures:
    """How a background loop reports a failed round. A database outage is one warning when it starts
    and one line when a round succeeds again (a loop polling every 0.1 s would otherwise log each
    round); any other failure is logged with its traceback every time."""

    def __init__(self, logger: Any, event: str, **fields: Any) -> None:
        self.log, self.event, self.fields = logger, event, fields
        self.outage_rounds = 0

    def failed(self, exc: BaseException) -> None:
        if not database_unavailable(exc):
            self.log.error(self.event, error=repr(exc), exc_info=exc, **self.fields)
            return
        if self.outage_rounds == 0:
            self.log.warning(self.event, error=_summary(exc), database_unavailable=True, **self.fields)
        self.outage_rounds += 1

    def succeeded(self) -> None:
        if self.outage_rounds:
            self.log.info(f"{self.event.removesuffix('_failed')}_recovered", failed_rounds=self.outage_rounds,
                          **self.fields)
            self.outage_rounds = 0


async def _database_error(request: Request, exc: Exception) -> Response:
    if database_unavailable(exc):
        log.warning("database_unavailable", method=request.method, path=request.url.path, error=_summary(exc))
        return error_response(503, "SERVICE_UNAVAILABLE", "The database is unavailable; try again shortly",
                              headers={"Retry-After": str(RETRY_AFTER_S), _MARKER: "1"})
    if unstorable_input(exc):
        log.warning("unstorable_input", error=repr(exc))
        return error_response(400, "VALIDATION_ERROR", UNSTORABLE_MESSAGE)
    log.exception("unhandled_error", error=repr(exc))
    return error_response(500, "INTERNAL_ERROR", "Internal server error")


def install_database_error_handler(app: FastAPI) -> None:
    """Database errors are answered here, inside the app (the catch-all handler would re-raise them
    after answering, and they would be logged a second time outside)."""
    app.add_exception_handler(DBAPIError, _database_error)


class DatabaseRetryMiddleware:
    """Pure ASGI: runs an idempotent request once more when the database failed under it, and takes
    the handler's internal marker off every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _IDEMPOTENT:
            await self.app(scope, receive, _strip_marker(send))
            return
        failed = False

        async def first_try(message: Message) -> None:
            nonlocal failed
            if message["type"] == "http.response.start" and _marked(message):
                failed = True
            if not failed:
                await send(message)

        await self.app(scope, receive, first_try)
        if failed:
            await self.app(scope, _empty_body(receive), _strip_marker(send))


def _marked(message: Message) -> bool:
    return any(name == _B_MARKER for name, _ in message.get("headers", ()))


def _strip_marker(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and _marked(message):
            message = {**message, "headers": [(n, v) for n, v in message["headers"] if n != _B_MARKER]}
        await send(message)

    return wrapped


def _empty_body(receive: Receive) -> Receive:
    """A GET's body is empty: the second run reads it again from here, then the real channel
    (for the client's disconnect)."""
    given = False

    async def wrapped() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        message: dict[str, Any] = dict(await receive())
        return message

    return wrapped
