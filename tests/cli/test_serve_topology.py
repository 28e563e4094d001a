"""`nno serve` refuses a place in a deployment that cannot work (issue 18, goal 7), and `--workers N`
serves one port from N processes (goal 6)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from typer.testing import CliRunner

from nno.cli.main import app
from nno.core import Core
from nno.kernel.bindings import HTTPBinding
from nno.kernel.config import SERVICE_NAMES, Settings
from nno.kernel.topology import OK, UNREACHABLE, WRONG, configuration_problems, probe_service
from tests import processes
from tests.conftest import BACKEND, SERVICE_KEY

PG = "postgresql://postgres@127.0.0.1:5432/unused"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _all_urls(url: str, *, but: tuple[str, ...] = ()) -> dict[str, str]:
    return {f"{n}_url": url for n in SERVICE_NAMES if n not in but}


# --- what the settings alone say -------------------------------------------------------------------

def test_a_split_process_on_sqlite_is_refused() -> None:
    problems = configuration_problems(Settings(**_all_urls("http://x:1")), ["registry"])
    assert len(problems) == 1 and "NNO_DATABASE_URL" in problems[0] and "PostgreSQL" in problems[0]


def test_a_service_nobody_serves_is_refused_by_name() -> None:
    settings = Settings(database_url=PG, **_all_urls("http://x:1", but=("billing", "cli")))
    [problem] = configuration_problems(settings, ["registry"])
    assert "billing (NNO_BILLING_URL), cli (NNO_CLI_URL)" in problem
    assert configuration_problems(settings, ["registry", "billing", "cli"]) == []


def test_its_own_url_is_no_problem_and_a_gateway_hosts_what_has_no_url() -> None:
    assert configuration_problems(Settings(database_url=PG, **_all_urls("http://x:1")), ["iam"]) == []
    assert configuration_problems(Settings(database_url=PG, iam_url="http://x:1"), []) == []


def test_several_processes_need_postgresql() -> None:
    [problem] = configuration_problems(Settings(), [], processes=2)
    assert "--workers 2" in problem and "SQLite" in problem
    assert configuration_problems(Settings(), [], processes=1) == []
    assert configuration_problems(Settings(database_url=PG), [], processes=4) == []


# --- refusing at start -------------------------------------------------------------------------------

@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    from nno.cli import serve

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(serve, "bind_or_explain", lambda host, port: None)
    monkeypatch.setattr(serve, "start_uvicorn", lambda asgi, sock, ready, **kw: calls.append(kw))
    monkeypatch.setattr(serve, "start_supervisor", lambda sock, ready, **kw: calls.append(kw))
    monkeypatch.setenv("NNO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTH_API_KEY", SERVICE_KEY)
    for name in ["NNO_DATABASE_URL", "NNO_REDIS_URL", "NNO_PUBLIC_URL",
                 *(f"NNO_{n.upper()}_URL" for n in SERVICE_NAMES)]:
        monkeypatch.delenv(name, raising=False)
    old = structlog.get_config()
    try:
        yield calls
    finally:
        structlog.configure(**old)


def _serve(*args: str) -> Any:
    return CliRunner().invoke(app, ["serve", "--port", "9", *args])


def test_serve_refuses_a_split_on_sqlite_and_services_nobody_serves(runs: list) -> None:
    result = _serve("--service", "registry")
    assert result.exit_code == 2 and runs == []
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 2, result.output
    assert "NNO_DATABASE_URL" in lines[0]
    assert "no process serves iam (NNO_IAM_URL), billing (NNO_BILLING_URL)" in lines[1]


def test_serve_refuses_several_processes_on_sqlite(runs: list) -> None:
    result = _serve("--workers", "2")
    assert result.exit_code == 2 and "--workers 2 needs PostgreSQL" in result.output and runs == []


def test_serve_says_what_it_serves_and_where_it_reaches_the_others(
        runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    nobody = f"http://127.0.0.1:{_free_port()}"  # not started yet: no refusal
    monkeypatch.setenv("NNO_DATABASE_URL", PG)
    for name in SERVICE_NAMES:
        monkeypatch.setenv(f"NNO_{name.upper()}_URL", nobody)
    result = _serve("--service", "registry", "--service", "iam")
    assert result.exit_code == 0, result.output
    assert '"services": ["registry", "iam"]' in result.output
    assert f'"billing": "{nobody}"' in result.output and '"registry": ' not in result.output.split("reaches")[1]
    assert "shared_state_in_memory" in result.output  # no Redis: said, not refused
    assert len(runs) == 1


# --- asking remote services who they are ---------------------------------------------------------------

@contextmanager
def serving(core: Core) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(core.asgi, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


async def test_identity_tells_a_service_from_a_gateway_another_service_and_another_install(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    services = Core(settings, ["iam", "registry"], with_gateway=False, with_edge=False, standalone=True)
    gateway = Core(make_settings(**_all_urls("http://127.0.0.1:1")))  # a gateway hosting nothing itself
    with serving(services) as both, serving(gateway) as front:
        secret = settings.signing_secret

        async def probe(name: str, url: str, key: bytes = secret) -> Any:
            binding = HTTPBinding(name, url, key, 5)
            try:
                return await probe_service(binding)
            finally:
                await binding.close()

        assert (await probe("registry", f"{both}/registry")).verdict == OK
        assert (await probe("iam", f"{both}/iam")).verdict == OK
        wrong = await probe("iam", f"{both}/registry")
        assert wrong.verdict == WRONG and "serves registry, not iam" in wrong.message
        assert "NNO_IAM_URL=" in wrong.message and "nno serve --service iam" in wrong.message
        root = await probe("registry", both)
        assert root.verdict == WRONG and f"use {both}/registry" in root.message  # each under its name
        at_gateway = await probe("registry", front)
        assert at_gateway.verdict == WRONG and "is a gateway" in at_gateway.message
        other = await probe("registry", f"{both}/registry", b"another-install-secret")
        assert other.verdict == WRONG and "internal token" in other.message
        assert (await probe("registry", f"http://127.0.0.1:{_free_port()}")).verdict == UNREACHABLE

        # The services answer under their names; without the internal token nothing says who they are.
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{both}/_nno/identity")).status_code in (401, 404, 503)
            assert (await client.get(f"{front}/_nno/identity")).status_code == 404
            token = {"x-nno-internal-token": HTTPBinding("x", both, secret).__dict__["_token"]}
            health = await client.get(f"{both}/health")  # for a container's health check: no token
            assert health.status_code == 200 and health.text == "ok"
            refused = await client.get(f"{both}/registry/openapi.json")  # a service still wants the token
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHORIZED"
            served = await client.get(f"{both}/registry/openapi.json", headers=token)
            assert served.status_code == 200 and served.json()["info"]["title"] == "NNO Registry"
            assert (await client.get(f"{both}/_nno/identity", headers=token)).json() == {
                "nno": "identity", "gateway": False, "services": [], "mounted": ["iam", "registry"]}


async def test_serve_refuses_a_url_that_reaches_the_wrong_service(
        make_settings: Callable[..., Settings], runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings()
    iam = Core(settings, ["iam"], with_gateway=False, with_edge=False, standalone=True)
    with serving(iam) as iam_url:
        monkeypatch.setenv("NNO_DATABASE_URL", PG)
        monkeypatch.setenv("NNO_DATA_DIR", str(settings.data_dir))
        for name in SERVICE_NAMES:
            monkeypatch.setenv(f"NNO_{name.upper()}_URL", iam_url)  # every URL reaches IAM
        # The iam process is fine; the registry process is told IAM's address for billing, stacks...
        result = await _run_in_thread(lambda: _serve("--service", "registry"))
    assert result.exit_code == 2, result.output
    assert f"error: NNO_BILLING_URL={iam_url} serves iam, not billing" in result.output
    assert "NNO_IAM_URL" not in result.output  # the one right address is not complained about
    assert runs == []


async def test_a_worker_refuses_a_url_that_reaches_the_wrong_service(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    iam = Core(settings, ["iam"], with_gateway=False, with_edge=False, standalone=True)
    with serving(iam) as iam_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}
        env.update({"AUTH_API_KEY": SERVICE_KEY, "NNO_DATA_DIR": str(tmp_path / "w"),
                    "NNO_IAM_URL": iam_url, "NNO_REGISTRY_URL": iam_url})
        done = await _run_in_thread(lambda: subprocess.run(
            [sys.executable, "-m", "nno", "worker"], env=env, capture_output=True, text=True, timeout=120))
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"error: NNO_REGISTRY_URL={iam_url} serves iam, not registry" in done.stderr
    assert "Traceback" not in done.stderr


async def _run_in_thread(fn: Callable[[], Any]) -> Any:
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, fn)


# --- --workers N, for real -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "scaled", reason="several processes need PostgreSQL: NNO_TEST_BACKEND=scaled")
def test_workers_serve_one_port_and_run_the_job_worker_once(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}
    env.update({"AUTH_API_KEY": SERVICE_KEY, "NNO_DATABASE_URL": str(settings.database_url),
                "NNO_REDIS_URL": str(settings.redis_url), "NNO_REDIS_PREFIX": settings.redis_prefix,
                "NNO_DATA_DIR": str(settings.data_dir), "NNO_WORKER_POLL_INTERVAL": "0.1"})
    log = tmp_path / "serve.log"
    with log.open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "nno", "serve", "--port", str(port), "--workers", "2"],
                                env=env, stdout=subprocess.PIPE, stderr=err_file, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # printed once both processes accept requests
        assert line == (f"NNO ready at http://127.0.0.1:{port} (all services, 2 processes; "
                        f"data in {settings.data_dir})"), log.read_text()[-3000:]
        children = _children(proc.pid)
        assert len(children) == 2, children
        holder = _lock_holder(settings.data_dir / "serve-worker.lock")
        assert holder in children
        base = f"http://127.0.0.1:{port}"
        key = {"Authorization": f"Bearer {SERVICE_KEY}"}
        with httpx.Client(base_url=base, headers=key, timeout=60) as client:
            made = client.post("/api/v1/platforms", json={"name": "Two Procs", "slug": "two-procs"})
            assert made.status_code == 201, made.text
            pid = made.json()["id"]
            job = client.post("/api/v1/provisioning/provision/platform", json={"platformId": pid})
            assert job.status_code in (200, 201, 202), job.text
            status = ""
            for _ in range(1200):  # the one embedded worker runs it
                status = client.get(f"/api/v1/platforms/{pid}").json()["status"]
                if status == "active":
                    break
                time.sleep(0.1)
            assert status == "active"
            # The child running the job worker killed outright: the port keeps answering, and its
            # replacement takes the job worker over.
            os.kill(holder, signal.SIGKILL)
            for _ in range(50):  # new connections (a kept-alive one may have been the killed child's)
                assert httpx.get(f"{base}/health", timeout=30).status_code == 200
            successor = None
            for _ in range(1200):
                successor = _lock_holder(settings.data_dir / "serve-worker.lock")
                if successor not in (None, holder):
                    break
                time.sleep(0.1)
            assert successor not in (None, holder) and successor in _children(proc.pid)
    finally:
        processes.stop([proc], timeout=60)
    err = log.read_text()
    events = re.findall(r'"event": "([a-z_]+)"', err)
    # two children and the replacement each start a core; one job worker at a time among them
    assert events.count("core_started") == 3, err[-3000:]
    assert events.count("worker_started") == 2, err[-3000:]


def _lock_holder(path: Path) -> int | None:
    """The process holding the embedded worker's lock on `path`, from the kernel's lock table."""
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        return None
    for row in Path("/proc/locks").read_text().splitlines():
        parts = row.split()
        if "FLOCK" in parts and parts[-3].rsplit(":", 1)[-1] == str(inode):
            return int(parts[-4])
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    # uvicorn's spawn context also starts a resource tracker: keep the processes that serve
    return [p for p in found if "multiprocessing.spawn" in Path(f"/proc/{p}/cmdline").read_text()
            and "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]
