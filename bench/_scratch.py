"""What the process-level benches share: a scratch PostgreSQL database each, and `nno` processes
started and stopped the same way (SIGTERM, then SIGKILL after 15 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import pgscratch, processes

PG_ADMIN = os.environ.get("NNO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def create_db(prefix: str) -> str:
    return await pgscratch.create_db(PG_ADMIN, prefix)


async def drop_db(url: str) -> None:
    await pgscratch.drop_db(PG_ADMIN, url)


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "nno", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    processes.stop(procs)
