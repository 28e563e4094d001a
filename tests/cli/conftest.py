"""A real NNO server for the CLI: the core's ASGI app under uvicorn on a free loopback port, in a
background thread (its own event loop), plus helpers to run `nno` against it.

The CLI runs in-process through typer's CliRunner (or as a subprocess where a test needs to read
its output while it runs). Each test gets its own credentials directory through NNO_HOME.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from typer.testing import CliRunner, Result

from nno.cli.main import app
from nno.core import Core
from nno.kernel.config import Settings
from tests.conftest import (
    BACKEND,
    REDIS_URL,
    SERVICE_KEY,
    clear_redis_prefix,
    create_pg_database,
    drop_pg_database,
)

# Variables that would make the CLI under test reach for the developer's own setup.
ISOLATE_ENV = ("NNO_API_URL", "NNO_API_TOKEN", "AUTH_API_KEY", "NNO_DEBUG")


@dataclass
class LiveServer:
    url: str
    core: Core
    settings: Settings
    http: httpx.Client = field(repr=False)

    def service(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SERVICE_KEY}"}


def _quiet_structlog(log_file: Path) -> dict[str, Any]:
    """Send the server's structured logs to a file so they never mix with the CLI's captured stdout."""
    previous = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=log_file.open("a", encoding="utf-8")),
        cache_logger_on_first_use=False,
    )
    return previous


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    """Settings for the live server; a test changes them with
    `@pytest.mark.parametrize("server_overrides", [{...}])`."""
    return {}


@contextmanager
def serve_core(settings_for: Callable[[str], Settings], log_path: Path,
               services: list[str] | None = None) -> Iterator[LiveServer]:
    """Start a core (all services, or only `services`) on a free loopback port; `settings_for(url)`
    builds its settings."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = settings_for(url)
    previous_log_config = _quiet_structlog(log_path)
    core = Core(settings, services)
    server = uvicorn.Server(uvicorn.Config(core.asgi, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="nno-live")
    thread.start()
    http = httpx.Client(base_url=url, timeout=30)
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the NNO server did not start; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError("the NNO server took more than 60 s to start")
            time.sleep(0.02)
        yield LiveServer(url=url, core=core, settings=settings, http=http)
    finally:
        http.close()
        server.should_exit = True
        thread.join(30)
        sock.close()
        structlog.configure(**previous_log_config)


class SharedServer:
    """One server for a whole test module (tests use their own users and platforms), so the suite
    does not pay a core start, and on PostgreSQL a database, per test. It is stopped while a test
    runs its own server, so only one core runs at a time, and started again (same data) after."""

    def __init__(self, base: Path, backend: dict[str, Any], overrides: dict[str, Any]) -> None:
        self.base = base
        self.backend = backend
        self.overrides = overrides
        self._running: Any = None
        self.server: LiveServer | None = None

    def settings_for(self, url: str) -> Settings:
        # The same values as the `make_settings` fixture of tests/conftest.py.
        values: dict[str, Any] = {"auth_api_key": SERVICE_KEY, "data_dir": self.base / "data", "log_json": True,
                                  "worker_poll_interval_s": 0.05, "public_url": url, "dev_outbox": True}
        return Settings(**(values | self.backend | self.overrides))

    def get(self) -> LiveServer:
        if self.server is None:
            self._running = serve_core(self.settings_for, self.base / "server.log")
            self.server = self._running.__enter__()
        return self.server

    def stop(self) -> None:
        if self._running is not None:
            running, self._running, self.server = self._running, None, None
            running.__exit__(None, None, None)


@pytest.fixture(scope="module")
def shared_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServer]:
    """A module sets `SHARED_SETTINGS = {...}` to run its shared server with other settings."""
    backend: dict[str, Any] = {}
    if BACKEND == "scaled":
        backend = {"database_url": asyncio.run(create_pg_database()), "redis_url": REDIS_URL,
                   "redis_prefix": f"nnotest:{uuid.uuid4().hex[:12]}:"}
    shared = SharedServer(tmp_path_factory.mktemp("nno-shared"), backend,
                          dict(getattr(request.module, "SHARED_SETTINGS", {})))
    try:
        yield shared
    finally:
        shared.stop()
        if backend:
            asyncio.run(drop_pg_database(backend["database_url"]))
            asyncio.run(clear_redis_prefix(backend["redis_prefix"]))


@pytest.fixture
def live_server(request: pytest.FixtureRequest, tmp_path: Path, shared_server: SharedServer,
                server_overrides: dict[str, Any]) -> Iterator[LiveServer]:
    """The module's shared server, or a fresh one for a test that changes the settings."""
    if not server_overrides:
        yield shared_server.get()
        return
    shared_server.stop()
    make_settings: Callable[..., Settings] = request.getfixturevalue("make_settings")
    with serve_core(lambda url: make_settings(public_url=url, **server_overrides),
                    tmp_path / "server.log") as server:
        yield server


@pytest.fixture
def nno_home(tmp_path: Path) -> Path:
    return tmp_path / "nno-home"


@pytest.fixture
def cli_env(nno_home: Path) -> dict[str, str | None]:
    env: dict[str, str | None] = {name: None for name in ISOLATE_ENV}
    env["NNO_HOME"] = str(nno_home)
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def nno(live_server: LiveServer, cli_env: dict[str, str | None]) -> Callable[..., Result]:
    """Run `nno --api-url <live server> <args>` in-process; returns typer's Result."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str | None] | None = None, input: str | None = None,
               api_url: str | None = None) -> Result:
        merged = dict(cli_env)
        merged.update(env or {})
        return runner.invoke(app, ["--api-url", api_url or live_server.url, *args], env=merged, input=input)

    return invoke


def parse_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_clean_failure(result: Result, *, exit_code: int | None = None) -> str:
    """Non-zero exit, no traceback, a short message on stderr; returns that message."""
    assert result.exit_code != 0, result.output
    if exit_code is not None:
        assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.stderr


def sign_up(server: LiveServer, email: str, password: str = "correct-horse-battery-9") -> dict[str, Any]:
    """A new IAM user through the gateway; returns `{token, user, session}`."""
    response = server.http.post("/api/v1/iam/api/auth/sign-up/email",
                                json={"name": email.split("@")[0], "email": email, "password": password})
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def login_new_user(server: LiveServer, nno: Callable[..., Result], email: str) -> dict[str, Any]:
    signed = sign_up(server, email)
    result = nno("login", "--token", signed["token"])
    assert result.exit_code == 0, result.output
    return signed


def onboard(nno: Callable[..., Result], name: str, slug: str) -> dict[str, Any]:
    """`nno platform create --no-wait --json`: the onboarding session (the platform starts pending)."""
    data: dict[str, Any] = parse_json(nno("platform", "create", name, "--slug", slug, "--no-wait", "--json"))
    return data["onboarding"]


def make_active(server: LiveServer, platform_id: str) -> None:
    """Drive a platform to `active` as a service would (bootstrap, complete), without provisioning."""
    for action in ("bootstrap", "complete"):
        response = server.http.post(f"/api/v1/platforms/{platform_id}/lifecycle", json={"action": action},
                                    headers=server.service())
        assert response.status_code == 200, response.text
