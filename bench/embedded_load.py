"""Embedded under load (issue 18, goal 5): `nno serve` on SQLite with 20 concurrent clients creating
tenants, then listing them, through the gateway over HTTP. Prints latency percentiles; asserts
nothing (run by hand). Target: tenant create p99 <= 300 ms.

    .venv/bin/python bench/embedded_load.py [--clients 20] [--per-client 15] [--rounds 1]

Each round gets a fresh data directory and its own `nno serve` process (embedded worker on, the
default); the platform is created first (tier `scale`, no tenant limit), and both routes are warmed,
untimed. The machine may be shared, so each round also times a reference: the same clients on the
gateway's `/health` (HTTP, the gateway's middleware, no service and no database), before the creates
and after the lists. `x ref` is a phase's percentile over the reference's: it moves less with the
machine's load than the milliseconds do. `server CPU` is the serving process's user+system CPU per
request, which does not depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

KEY = "bench-service-key-" + uuid.uuid4().hex
SERVICE = {"Authorization": f"Bearer {KEY}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc), to report the server's cost per
    request independently of how busy the machine is."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1] * 1000,
            "mean": statistics.fmean(ordered) * 1000}


def show(name: str, stats: dict[str, float], errors: dict[int, int]) -> str:
    return (f"{name:<14} n={int(stats['n']):>4}  p50={stats['p50']:7.1f} ms  p95={stats['p95']:7.1f} ms  "
            f"p99={stats['p99']:7.1f} ms  max={stats['max']:7.1f} ms  errors={errors or 0}")


def versus(stats: dict[str, float], ref: dict[str, float]) -> str:
    return f"x ref: p50 {stats['p50'] / ref['p50']:.1f}, p99 {stats['p99'] / ref['p99']:.1f}"


async def wait_health(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("nno serve did not come up")


async def run_round(clients: int, per_client: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="nno-embedded-load-"))
    port = free_port()
    env = {**os.environ, "NNO_DATA_DIR": str(data_dir), "AUTH_API_KEY": KEY, "NNO_RATE_LIMIT": "1000000/60s",
           "NNO_LOG_LEVEL": "warning"}
    for var in ("NNO_DATABASE_URL", "NNO_REDIS_URL"):
        env.pop(var, None)
    proc = subprocess.Popen([sys.executable, "-m", "nno", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as client:
            await wait_health(client)
            r = await client.post("/api/v1/platforms", headers=SERVICE,
                                  json={"name": "Load", "slug": "load-" + uuid.uuid4().hex[:6], "tier": "scale"})
            r.raise_for_status()
            pid = r.json()["id"]
            tenants = f"/api/v1/platforms/{pid}/tenants"
            (await client.post(tenants, headers=SERVICE, json={"name": "Warm", "slug": "warm"})).raise_for_status()
            (await client.get(tenants, headers=SERVICE)).raise_for_status()

            async def phase(request: Callable[[int, int], Awaitable[httpx.Response]]) -> dict[str, Any]:
                samples: list[float] = []
                errors: dict[int, int] = {}

                async def one_client(c: int) -> None:
                    for i in range(per_client):
                        started = time.perf_counter()
                        resp = await request(c, i)
                        samples.append(time.perf_counter() - started)
                        if resp.status_code >= 400:
                            errors[resp.status_code] = errors.get(resp.status_code, 0) + 1

                started, cpu_before, own_before = time.perf_counter(), cpu_s(proc.pid), time.process_time()
                await asyncio.gather(*(one_client(c) for c in range(clients)))
                wall = time.perf_counter() - started
                return {**percentiles(samples), "errors": errors, "per_s": len(samples) / wall,
                        "cpu_ms": (cpu_s(proc.pid) - cpu_before) * 1000 / len(samples),
                        "client_cpu_ms": (time.process_time() - own_before) * 1000 / len(samples)}

            def health(_c: int, _i: int) -> Awaitable[httpx.Response]:
                return client.get("/health", headers=SERVICE)

            def create(c: int, i: int) -> Awaitable[httpx.Response]:
                return client.post(tenants, headers=SERVICE, json={"name": f"Tenant {c}-{i}", "slug": f"t-{c}-{i}"})

            def listing(_c: int, _i: int) -> Awaitable[httpx.Response]:
                return client.get(tenants, headers=SERVICE, params={"limit": 50})

            ref_before = await phase(health)
            created = await phase(create)
            listed = await phase(listing)
            ref_after = await phase(health)
            ref = {q: (ref_before[q] + ref_after[q]) / 2 for q in ("p50", "p99", "per_s", "cpu_ms")}
            return {"create": created, "list": listed, "ref": ref}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    create_p99: list[float] = []
    for n in range(args.rounds):
        res = await run_round(args.clients, args.per_client)
        ref = res["ref"]
        print(f"round {n + 1}: {args.clients} concurrent clients, embedded (SQLite)")
        for name, key in (("tenant create", "create"), ("tenant list", "list")):
            st = res[key]
            print(f"  {show(name, st, st['errors'])}  {st['per_s']:.0f}/s, "
                  f"CPU server {st['cpu_ms']:.1f} ms, client {st['client_cpu_ms']:.1f} ms each, {versus(st, ref)}")
        print(f"  {'reference':<14} GET /health  p50={ref['p50']:7.1f} ms  p99={ref['p99']:7.1f} ms  "
              f"{ref['per_s']:.0f}/s, CPU server {ref['cpu_ms']:.1f} ms each (mean of before and after)", flush=True)
        create_p99.append(res["create"]["p99"])
    if len(create_p99) > 1:
        print(f"tenant create p99 over {len(create_p99)} rounds: median {statistics.median(create_p99):.1f} ms, "
              f"best {min(create_p99):.1f} ms, worst {max(create_p99):.1f} ms (target <= 300 ms)")
    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    asyncio.run(main())
