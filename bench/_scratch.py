"""What the process-level benches share: a scratch PostgreSQL database each, and `nno` processes
started and stopped the same way (SIGTERM, then SIGKILL after 15 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import asyncpg

PG_ADMIN = os.environ.get("NNO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def create_db(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def drop_db(url: str) -> None:
    from nno.edge.d1 import drop_roles_of

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    await drop_roles_of(PG_ADMIN, name)  # the platforms' D1 roles are cluster-wide: they outlive the database


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "nno", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
