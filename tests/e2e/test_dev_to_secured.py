"""From trying NNO to a secured install, as the README walks a new user through it, with real
`nno serve` and `nno` processes: `make run` (no AUTH_API_KEY), sign up, onboard a platform, create the
first operator, stop, set AUTH_API_KEY, start again, and everything still works: the platform's
auth worker (its secrets were sealed in dev mode), its users, the operator, the CLI's login."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests import processes

SERVICE_KEY = "a-real-service-key-0123456789abcdef"
PASSWORD = "correct-horse-9"
OPERATOR_PASSWORD = "operator-password-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}
    env.update(extra)
    return env


@contextmanager
def nno_serve(port: int, data_dir: Path, log: Path, env: dict[str, str]) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nno", "serve", "--port", str(port), "--data-dir",
                                 str(data_dir)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.time() < deadline, f"nno serve did not start:\n{log.read_text()}"
            time.sleep(0.2)
        yield url
    finally:
        processes.stop([proc], signal.SIGINT, timeout=30)


def _nno(url: str, env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nno", "--api-url", url, *args], env=env, input=input,
                          capture_output=True, text=True, timeout=180)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


def _auth_worker(url: str, port: int, pid: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=30,
                      headers={"Host": f"auth.svc.default.{pid}.nno.localhost:{port}"})


async def test_from_make_run_to_a_secured_install(tmp_path: Path, backend_overrides: dict[str, Any]) -> None:
    import json

    data, log = tmp_path / "data", tmp_path / "serve.log"
    backend: dict[str, str] = {}
    if backend_overrides:  # scaled: the same walk on PostgreSQL + Redis
        backend = {"NNO_DATABASE_URL": backend_overrides["database_url"],
                   "NNO_REDIS_URL": backend_overrides["redis_url"],
                   "NNO_REDIS_PREFIX": backend_overrides["redis_prefix"]}
    dev_env = _clean_env(backend)
    cli_env = _clean_env({"NNO_HOME": str(tmp_path / "home")})
    port = _free_port()

    # 1. `make run`: no AUTH_API_KEY.
    with nno_serve(port, data, log, dev_env) as url:
        signed = httpx.post(f"{url}/api/v1/iam/api/auth/sign-up/email", timeout=30,
                            json={"name": "Ada", "email": "ada@nno.localhost", "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        _ok(_nno(url, cli_env, "login", "--token", signed.json()["token"]))
        _ok(_nno(url, cli_env, "platform", "create", "Acme Corp", "--slug", "acme", "--timeout", "150"))
        platforms = json.loads(_ok(_nno(url, cli_env, "platform", "list", "--json")))["data"]
        assert [(p["slug"], p["status"]) for p in platforms] == [("acme", "active")]
        pid = platforms[0]["id"]
        # The platform's own auth worker answers, and has a user.
        bob = _auth_worker(url, port, pid, "/api/auth/sign-up/email",
                           {"name": "Bob", "email": "bob@acme.example", "password": PASSWORD})
        assert bob.status_code == 200, f"{bob.text}\n{log.read_text()[-3000:]}"
        # The first operator, with no key to give (there is none in dev mode).
        out = _ok(_nno(url, cli_env, "admin", "bootstrap", "--email", "ops@nno.localhost", "--password-stdin",
                       input=OPERATOR_PASSWORD + "\n"))
        assert "Operator ops@nno.localhost created" in out
    assert (data / "cloud" / "secrets.key").is_file()

    # 2. Secured: the same data, AUTH_API_KEY set.
    secured_env = _clean_env({**backend, "AUTH_API_KEY": SERVICE_KEY})
    with nno_serve(port, data, log, secured_env) as url:
        assert httpx.get(f"{url}/api/v1/platforms", timeout=30).status_code == 401  # no more bypass
        # The auth worker starts with the secrets sealed in dev mode; its user signs in.
        again = _auth_worker(url, port, pid, "/api/auth/sign-in/email",
                             {"email": "bob@acme.example", "password": PASSWORD})
        assert again.status_code == 200, f"{again.text}\n{log.read_text()[-3000:]}"
        assert "InvalidTag" not in log.read_text() and "worker_start_failed" not in log.read_text()
        # Ada's CLI login from dev mode still works.
        who = json.loads(_ok(_nno(url, cli_env, "whoami", "--json")))
        assert who["email"] == "ada@nno.localhost"
        mine = json.loads(_ok(_nno(url, cli_env, "platform", "list", "--json")))
        assert [p["id"] for p in mine["data"]] == [pid]
        # The operator signs in and acts on every platform.
        op = httpx.post(f"{url}/api/v1/iam/api/auth/sign-in/email", timeout=30,
                        json={"email": "ops@nno.localhost", "password": OPERATOR_PASSWORD})
        assert op.status_code == 200, op.text
        op_env = {**cli_env, "NNO_API_TOKEN": op.json()["token"]}
        assert json.loads(_ok(_nno(url, op_env, "whoami", "--json")))["role"] == "nno-operator"
        seen = json.loads(_ok(_nno(url, op_env, "platform", "list", "--json")))
        assert pid in [p["id"] for p in seen["data"]]
        suspended = httpx.post(f"{url}/api/v1/platforms/{pid}/lifecycle", timeout=30,
                               headers={"Authorization": f"Bearer {op.json()['token']}"},
                               json={"action": "suspend", "reason": "operator check"})
        assert suspended.status_code == 200, suspended.text
        restored = httpx.post(f"{url}/api/v1/platforms/{pid}/lifecycle", timeout=30,
                              headers={"Authorization": f"Bearer {op.json()['token']}"},
                              json={"action": "restore"})
        assert restored.status_code == 200, restored.text
        # The CLI now needs the key to make another operator, and says so.
        refused = _nno(url, cli_env, "admin", "bootstrap", "--email", "x@nno.localhost", "--password-stdin",
                       input=OPERATOR_PASSWORD + "\n")
        assert refused.returncode == 4 and "--service-key" in refused.stderr
