"""Scaled out for real (issue 18, goal 6): two `nno serve` processes with their own data directories,
as on two hosts, sharing only PostgreSQL and Redis, serve one platform: its auth Worker (users on a
D1 that is a PostgreSQL schema), its console (a Pages site) and its R2 objects, whichever process
a request reaches."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests import processes
from tests.conftest import BACKEND, REDIS_URL, clear_redis_prefix, create_pg_database, drop_pg_database

pytestmark = pytest.mark.skipif(BACKEND != "scaled", reason="needs PostgreSQL and Redis: NNO_TEST_BACKEND=scaled")

KEY = "shared-nothing-key-" + uuid.uuid4().hex
SERVICE = {"Authorization": f"Bearer {KEY}"}
USER = {"name": "Ada", "email": "ada@example.com", "password": "correct horse battery staple"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _up(port: int, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(600):
            assert proc.poll() is None, "nno serve exited"
            try:
                if (await c.get(f"http://127.0.0.1:{port}/health", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("nno serve did not start")


def _d1_files(data_dir: Path) -> list[Path]:
    d1 = data_dir / "cloud" / "d1"
    return sorted(d1.rglob("*.sqlite")) if d1.exists() else []


async def test_two_hosts_share_nothing_but_postgresql_and_redis(tmp_path: Path) -> None:
    db_url = await create_pg_database()
    prefix = f"nnotest:{uuid.uuid4().hex[:12]}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}
    env.update({"NNO_DATABASE_URL": db_url, "NNO_REDIS_URL": REDIS_URL, "NNO_REDIS_PREFIX": prefix,
                "AUTH_API_KEY": KEY, "NNO_SECRETS_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
                "NNO_SHELL_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
                "NNO_DEV_OUTBOX": "true", "NNO_RATE_LIMIT": "100000/60s", "NNO_LOG_LEVEL": "warning"})
    ports, procs = [_free_port(), _free_port()], []
    try:
        for i, port in enumerate(ports):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "nno", "serve", "--port", str(port), "--data-dir", str(tmp_path / f"host{i}")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port, proc in zip(ports, procs, strict=True):
            await _up(port, proc)
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        async with httpx.AsyncClient(timeout=60) as c:
            made = await c.post(f"{a}/api/v1/platforms", headers=SERVICE, json={"name": "Shared", "slug": "shared-1"})
            assert made.status_code == 201, made.text
            pid = made.json()["id"]
            submitted = await c.post(f"{a}/api/v1/provisioning/provision/platform", headers=SERVICE,
                                     json={"platformId": pid})
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["jobId"]
            for _ in range(1200):  # either process's embedded worker may run it
                job = (await c.get(f"{b}/api/v1/provisioning/provision/jobs/{job_id}", headers=SERVICE)).json()
                if job["status"] in ("COMPLETED", "ROLLED_BACK", "ROLLBACK_FAILED"):
                    break
                await asyncio.sleep(0.1)
            assert job["status"] == "COMPLETED", job

            auth = {"Host": f"auth.{pid}.nno.localhost"}
            signed_up = await c.post(f"{a}/api/auth/sign-up/email", headers=auth, json=USER)
            assert signed_up.status_code in (200, 201), signed_up.text
            signed_in = await c.post(f"{b}/api/auth/sign-in/email", headers=auth,
                                     json={"email": USER["email"], "password": USER["password"]})
            assert signed_in.status_code == 200, signed_in.text
            bearer = {**auth, "Authorization": f"Bearer {signed_in.json()['token']}"}
            for base in (a, b):
                session = await c.get(f"{base}/api/nno/session", headers=bearer)
                assert session.status_code == 200 and session.json()["email"] == USER["email"], session.text

            # The console (a Pages site with its function) as host1 rendered it from the database.
            console = await c.get(f"{b}/sign-in", headers={"Host": f"{pid}.nno.localhost"})
            assert console.status_code == 200 and "<form" in console.text, console.text
        assert _d1_files(tmp_path / "host0") == [] and _d1_files(tmp_path / "host1") == []
    finally:
        processes.stop(procs, signal.SIGINT, timeout=30)
        await drop_pg_database(db_url)
        await clear_redis_prefix(prefix)
