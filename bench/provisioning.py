"""Onboard N platforms at once through the Gateway and time their provisioning, with 1 and with 4
`nno worker` processes on PostgreSQL (run by hand; prints figures, asserts nothing).

    .venv/bin/python bench/provisioning.py [--platforms 100] [--workers 1 4] [--concurrency 4]

Each run gets a fresh PostgreSQL database, Redis prefix and data directory, an `nno serve` process
(gateway + services + edge, its embedded worker off) and the given number of `nno worker`
processes. Users are signed up first (untimed: argon2 is deliberately slow); the clock runs from the
first `POST /api/v1/onboarding` until every PROVISION_PLATFORM job has ended.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import create_db, drop_db, spawn, stop

REDIS = os.environ.get("NNO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
KEY = "bench-service-key-" + uuid.uuid4().hex
TERMINAL = ("COMPLETED", "ROLLED_BACK", "ROLLBACK_FAILED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])




async def wait_health(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("nno serve did not come up")


async def sign_up(client: httpx.AsyncClient, sem: asyncio.Semaphore, i: int) -> dict[str, str]:
    async with sem:
        r = await client.post("/api/v1/iam/api/auth/sign-up/email", json={
            "name": f"Bench {i}", "email": f"bench-{i}-{uuid.uuid4().hex[:6]}@example.com",
            "password": "bench-horse-battery"})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['token']}"}


async def onboard(client: httpx.AsyncClient, headers: dict[str, str], i: int) -> str | None:
    slug = f"bench-{i}-{uuid.uuid4().hex[:6]}"
    r = await client.post("/api/v1/onboarding", headers=headers,
                          json={"platformName": f"Bench {i}", "slug": slug, "tier": "starter"})
    if r.status_code != 201:
        return None
    job: str | None = r.json().get("provisionJobId")
    return job


async def job_totals(client: httpx.AsyncClient) -> dict[str, int]:
    service = {"Authorization": f"Bearer {KEY}"}
    out: dict[str, int] = {}
    for status in ("QUEUED", "RUNNING", "FAILED", "ROLLING_BACK", *TERMINAL):
        r = await client.get("/api/v1/provisioning/provision/jobs", headers=service,
                             params={"status": status, "limit": 1})
        r.raise_for_status()
        out[status] = int(r.json()["pagination"]["total"])
    return out


async def run(platforms: int, workers: int, concurrency: int) -> dict[str, Any]:
    db_url = await create_db("nno_bench")
    data_dir = Path(tempfile.mkdtemp(prefix="nno-bench-"))
    port = free_port()
    env = {**os.environ, "NNO_DATABASE_URL": db_url, "NNO_REDIS_URL": REDIS,
           "NNO_REDIS_PREFIX": f"nnobench:{uuid.uuid4().hex[:8]}:", "NNO_DATA_DIR": str(data_dir),
           "AUTH_API_KEY": KEY, "NNO_EMBEDDED_WORKER": "false", "NNO_RATE_LIMIT": "1000000/60s",
           "NNO_LOG_LEVEL": "warning", "NNO_WORKER_CONCURRENCY": str(concurrency),
           "NNO_WORKER_POLL_INTERVAL": "0.1"}
    procs = [spawn(["serve", "--port", str(port)], env)]
    try:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits) as client:
            await wait_health(client)
            procs += [spawn(["worker"], env) for _ in range(workers)]
            sem = asyncio.Semaphore(16)
            users = await asyncio.gather(*(sign_up(client, sem, i) for i in range(platforms)))
            await asyncio.sleep(2)  # let the workers finish starting before the clock runs
            started = time.perf_counter()
            job_ids = await asyncio.gather(*(onboard(client, users[i], i) for i in range(platforms)))
            accepted = time.perf_counter() - started
            refused = sum(1 for j in job_ids if j is None)
            while True:
                totals = await job_totals(client)
                if sum(totals[s] for s in TERMINAL) >= platforms - refused:
                    break
                if time.perf_counter() - started > 600:
                    raise RuntimeError(f"jobs did not finish: {totals}")
                await asyncio.sleep(0.2)
            wall = time.perf_counter() - started
            return {"workers": workers, "concurrency": concurrency, "platforms": platforms, "wall_s": wall,
                    "accept_s": accepted, "jobs_per_s": (platforms - refused) / wall,
                    "failures": refused + totals["ROLLED_BACK"] + totals["ROLLBACK_FAILED"],
                    "completed": totals["COMPLETED"]}
    finally:
        stop(procs)
        await drop_db(db_url)
        shutil.rmtree(data_dir, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platforms", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker process")
    args = parser.parse_args()
    results = []
    for n in args.workers:
        res = await run(args.platforms, n, args.concurrency)
        results.append(res)
        print(f"workers={res['workers']} (x{res['concurrency']} slots)  platforms={res['platforms']}  "
              f"wall={res['wall_s']:.2f}s  (onboarding requests answered in {res['accept_s']:.2f}s)  "
              f"jobs/s={res['jobs_per_s']:.2f}  completed={res['completed']}  failures={res['failures']}",
              flush=True)
    if len(results) > 1:
        base = results[0]["jobs_per_s"]
        for res in results[1:]:
            print(f"speed-up {res['workers']} vs {results[0]['workers']} workers: {res['jobs_per_s'] / base:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
