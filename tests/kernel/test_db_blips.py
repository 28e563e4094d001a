"""Database blips are invisible or retryable (issue 18): a connection that dies under a request is
retried once for a read, and answers 503 with Retry-After for a write (which did not commit); never a
500, and each failure is logged once. PostgreSQL: the backend serving the statement terminates itself
(`pg_terminate_backend(pg_backend_pid())`); SQLite: the statement finds the file locked."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import event
from structlog.testing import capture_logs

from nno.core import Core

P = "/api/v1/platforms"


class Blip:
    """Break the next `times` statements on an engine that contain `match`."""

    def __init__(self, core: Core, service: str) -> None:
        self.db = core.context(service).db
        self.match = ""
        self.times = 0
        self.hits = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> tuple[str, Any]:
        if self.times and self.match in statement:
            self.times -= 1
            self.hits += 1
            if self.db.is_sqlite:
                raise sqlite3.OperationalError("database is locked")
            # The connection's own backend is terminated by the statement it runs.
            return "SELECT pg_terminate_backend(pg_backend_pid())", ()
        return statement, parameters

    def arm(self, match: str, times: int = 1) -> None:
        self.match, self.times, self.hits = match, times, 0


@pytest.fixture
def blip(core: Core) -> Iterator[Blip]:
    fault = Blip(core, "registry")
    engine = fault.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", fault, retval=True)
    try:
        yield fault
    finally:
        event.remove(engine, "before_cursor_execute", fault)


async def platform(client: httpx.AsyncClient, h: dict[str, str]) -> str:
    resp = await client.post(P, json={"name": "Blips", "slug": "blips"}, headers=h)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def logged(logs: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in logs if e["log_level"] in ("warning", "error", "critical")]


async def test_a_read_whose_connection_drops_is_retried_and_succeeds(
        client: httpx.AsyncClient, service_headers: dict[str, str], blip: Blip) -> None:
    pid = await platform(client, service_headers)
    blip.arm("FROM platforms", times=1)
    with capture_logs() as logs:
        resp = await client.get(f"{P}/{pid}", headers=service_headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == pid and blip.hits == 1
    assert logged(logs) == ["database_unavailable"]  # once, as a warning; no traceback, no 500


async def test_a_read_that_fails_twice_is_a_503_to_retry(
        client: httpx.AsyncClient, service_headers: dict[str, str], blip: Blip) -> None:
    pid = await platform(client, service_headers)
    blip.arm("FROM platforms", times=2)
    with capture_logs() as logs:
        resp = await client.get(f"{P}/{pid}", headers=service_headers)
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "1"
    assert resp.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "x-nno-db-unavailable" not in resp.headers  # the internal marker never leaves
    assert logged(logs) == ["database_unavailable", "database_unavailable"]
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).status_code == 200  # and it recovers


async def test_a_write_whose_connection_drops_is_a_503_and_did_not_commit(
        client: httpx.AsyncClient, service_headers: dict[str, str], blip: Blip) -> None:
    pid = await platform(client, service_headers)
    before = (await client.get(f"{P}/{pid}/tenants", headers=service_headers)).json()["data"]
    blip.arm("INSERT INTO entities", times=1)
    body = {"name": "Tenant", "slug": "tenant"}
    with capture_logs() as logs:
        resp = await client.post(f"{P}/{pid}/tenants", json=body, headers=service_headers)
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "1" and resp.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert blip.hits == 1  # a write is not retried by the service
    assert logged(logs) == ["database_unavailable"]
    tenants = (await client.get(f"{P}/{pid}/tenants", headers=service_headers)).json()["data"]
    assert tenants == before  # nothing of it committed
    again = await client.post(f"{P}/{pid}/tenants", json=body, headers=service_headers)
    assert again.status_code == 201, again.text  # the client's retry succeeds


def test_a_background_loop_logs_an_outage_once_and_its_end() -> None:
    from sqlalchemy.exc import OperationalError

    from nno.kernel.dbfaults import LoopFailures

    log = structlog.get_logger("test")
    failures = LoopFailures(log, "sweep_failed", worker="w1")
    locked = OperationalError("UPDATE jobs", {}, sqlite3.OperationalError("database is locked"))
    with capture_logs() as logs:
        for _ in range(50):  # fifty failed rounds of one outage
            failures.failed(locked)
        failures.succeeded()
        failures.succeeded()
        failures.failed(ValueError("a bug"))
        failures.failed(ValueError("a bug"))
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [("sweep_failed", "warning"), ("sweep_recovered", "info"),
                      ("sweep_failed", "error"), ("sweep_failed", "error")]
    assert logs[0]["database_unavailable"] is True and logs[0]["worker"] == "w1"
    assert logs[1]["failed_rounds"] == 50
    assert isinstance(logs[2]["exc_info"], ValueError)  # a bug keeps its traceback, every time
