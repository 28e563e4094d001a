"""The fault run (issue 18): inject faults into a scaled install and print what survived.

    .venv/bin/python bench/faults.py [--platforms 150] [--kills 200] [--redis-outages 3]
                                     [--pg-seconds 20] [--embedded-clients 20] [--skip-embedded]

1. Worker kills (goal 1): `nno serve` (embedded worker off) and two `nno worker` processes on a fresh
   PostgreSQL database and a private redis-server; `--platforms` onboardings, and `--kills` SIGKILLs
   aimed at workers that hold a RUNNING job. A job fails by design only when one step's worker dies
   under it NNO_JOB_MAX_ATTEMPTS times (a poison step, WORKER_LOST), so the killer spares a worker
   holding a job whose current step already took its share of kills (see `max_hits`). Prints
   platforms active / failed / stuck, and duplicated resources (cloud and Registry).
2. Redis down (goal 2): a core whose Redis (a private redis-server) is behind a TCP proxy this bench
   cuts; platforms are suspended during each outage. Prints how long after Redis came back the
   gateway still disagreed with the Registry (against NNO_STATUS_CACHE_TTL), Redis attempts and
   warnings per outage.
3. PostgreSQL connections dropped (goal 3): clients read and create tenants through the gateway while
   every connection of the bench's database is terminated twice a second. Prints the answers by
   status (no 500 expected), and log lines per failure.
4. Embedded under load (goal 5): `bench/embedded_load.py`'s round.

All loops are bounded; nothing shared is stopped (the private Redis and the databases are the
bench's own). `tests/e2e/test_fault_run.py` runs a small version in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from structlog.testing import capture_logs

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _scratch import PG_ADMIN, create_db, drop_db, spawn, stop  # noqa: E402
from tests.netfaults import PrivateRedis, TcpProxy, free_port  # noqa: E402

from nno.core import Core  # noqa: E402
from nno.gateway.app import Gateway  # noqa: E402
from nno.kernel.config import Settings  # noqa: E402
from nno.kernel.kv import RedisKV  # noqa: E402
from nno.kernel.logging import configure_logging  # noqa: E402
from nno.provisioning import jobs as J  # noqa: E402

KEY = "fault-service-key-" + uuid.uuid4().hex
SERVICE = {"Authorization": f"Bearer {KEY}"}
TERMINAL = ("COMPLETED", "ROLLED_BACK", "ROLLBACK_FAILED")
P = "/api/v1/platforms"
PROV = "/api/v1/provisioning/provision"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else 0.0


# --- 1. worker kills ------------------------------------------------------------------------------



async def worker_kills(platforms: int, kills: int, *, lease_s: float = 3.0, deadline_s: float = 900) -> dict[str, Any]:
    db_url = await create_db("nno_faults")
    redis = PrivateRedis().start()
    data_dir = Path(tempfile.mkdtemp(prefix="nno-faults-"))
    port = free_port()
    env = {**os.environ, "NNO_DATABASE_URL": db_url, "NNO_REDIS_URL": redis.url, "NNO_DATA_DIR": str(data_dir),
           "AUTH_API_KEY": KEY, "NNO_EMBEDDED_WORKER": "false", "NNO_RATE_LIMIT": "1000000/60s",
           "NNO_LOG_LEVEL": "warning", "NNO_JOB_LEASE": str(lease_s), "NNO_WORKER_POLL_INTERVAL": "0.1",
           "NNO_JOB_BACKOFF_BASE": "0.2", "NNO_WORKER_CONCURRENCY": "4"}
    server = spawn(["serve", "--port", str(port)], env)
    workers: list[subprocess.Popen[bytes]] = []
    pg = await asyncpg.connect(db_url)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(300):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            workers = [spawn(["worker"], env) for _ in range(2)]
            pids = []
            for i in range(platforms):
                r = await client.post(P, headers=SERVICE, json={"name": f"Fault {i}", "slug": f"fault-{i}"})
                r.raise_for_status()
                pids.append(r.json()["id"])
                r = await client.post(f"{PROV}/platform", headers=SERVICE, json={"platformId": pids[-1]})
                r.raise_for_status()

            # The engine fails a job only when one of its steps is interrupted NNO_JOB_MAX_ATTEMPTS times
            # (a poison step); a job that makes progress survives any number of kills. A kill is counted
            # against the first step not yet done when the killer read the table; one that lands a step
            # later is counted against the wrong step, so each step is hit at most half the cap's margin.
            hit: Counter[tuple[str, int]] = Counter()
            done_kills = 0
            max_hits = max(1, (int(env.get("NNO_JOB_MAX_ATTEMPTS", "3")) - 1) // 2)
            while time.monotonic() - started < deadline_s:
                rows = await pg.fetch("SELECT id, status, lease_owner, steps FROM provisioning.provision_jobs")
                if all(r["status"] in TERMINAL for r in rows):
                    break
                if done_kills < kills:
                    for index, proc in enumerate(workers):
                        marker = f":{proc.pid}:"
                        held = [(r["id"], _step_at(r["steps"])) for r in rows
                                if r["status"] == "RUNNING" and marker in (r["lease_owner"] or "")]
                        # Every job the worker holds dies with it: spare workers holding a step at its cap.
                        if held and all(hit[h] < max_hits for h in held) and proc.poll() is None:
                            proc.send_signal(signal.SIGKILL)
                            proc.wait()
                            hit.update(held)
                            done_kills += 1
                            workers[index] = spawn(["worker"], env)
                            break
                await asyncio.sleep(0.05)
            wall = time.monotonic() - started
            rows = await pg.fetch("SELECT id, platform_id, status, attempts, error FROM provisioning.provision_jobs")
            statuses = Counter(r["status"] for r in rows)
            platform_status = Counter(
                r["status"] for r in await pg.fetch("SELECT status FROM registry.platforms"))
            registry_dupes = await pg.fetchval(
                "SELECT count(*) FROM (SELECT platform_id, type, name FROM registry.resources "
                "WHERE status <> 'deleted' GROUP BY 1, 2, 3 HAVING count(*) > 1) d")
            from nno.provisioning.providers.local import LocalProvider

            provider = LocalProvider(Settings(database_url=db_url, data_dir=data_dir, auth_api_key=KEY))
            cloud_dupes = 0
            try:
                for pid in pids:
                    kinds = Counter(r.type for r in await provider.list_platform_resources(pid))
                    if any(kinds[k] > n for k, n in (("d1", 1), ("worker", 1), ("pages", 1),
                                                                         ("dns", 2))):
                        cloud_dupes += 1
            finally:
                await provider.close()
            failures = [(r["id"], r["error"]) for r in rows if r["status"] != "COMPLETED"]
            return {"platforms": platforms, "kills": done_kills, "jobs_interrupted": len({job for job, _ in hit}),
                    "active": platform_status.get("active", 0),
                    "failed": statuses.get("ROLLED_BACK", 0) + statuses.get("ROLLBACK_FAILED", 0),
                    "stuck": sum(n for s, n in statuses.items() if s not in TERMINAL),
                    "duplicated": int(registry_dupes or 0) + cloud_dupes, "wall_s": wall,
                    "failures": failures[:5]}
    finally:
        await pg.close()
        stop([server, *workers])
        redis.stop()
        await drop_db(db_url)
        shutil.rmtree(data_dir, ignore_errors=True)


def _step_at(steps: str | list[dict[str, Any]]) -> int:
    """The index of the job's first step not yet completed or skipped (the one running or next)."""
    records = json.loads(steps) if isinstance(steps, str) else steps
    return next((i for i, rec in enumerate(records) if rec["status"] not in (J.STEP_COMPLETED, J.STEP_SKIPPED)),
                len(records))


# --- 2. Redis down ------------------------------------------------------------------------------

async def redis_outages(outages: int, platforms: int = 6, ttl_s: float = 2.0, outage_s: float = 2.0) -> dict[str, Any]:
    db_url = await create_db("nno_faults")
    redis = PrivateRedis().start()
    proxy = TcpProxy(redis.port)
    await proxy.restore()
    data_dir = Path(tempfile.mkdtemp(prefix="nno-faults-"))
    settings = Settings(database_url=db_url, redis_url=proxy.url, redis_prefix="faults:", data_dir=data_dir,
                        auth_api_key=KEY, status_cache_ttl_s=ttl_s, embedded_worker=False, rate_limit="1000000/60s")
    core = Core(settings)
    await core.start()
    try:
        gateway = core.gateway
        assert isinstance(gateway, Gateway) and isinstance(core.kv, RedisKV)
        transport = httpx.ASGITransport(app=core.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as client:
            pids = []
            for i in range(platforms):
                r = await client.post(P, headers=SERVICE, json={"name": f"Redis {i}", "slug": f"redis-{i}"})
                pids.append(r.json()["id"])
                for action in ("bootstrap", "complete"):
                    await client.post(f"{P}/{pids[-1]}/lifecycle", headers=SERVICE, json={"action": action})
            results = []
            direct = aioredis.from_url(redis.url)  # reads what Redis holds, past the proxy
            with capture_logs() as logs:
                for n in range(outages):
                    mark, failures_before = len(logs), core.kv.failures
                    await proxy.cut()
                    action = "suspend" if n % 2 == 0 else "restore"
                    changed = time.monotonic()
                    for pid in pids:
                        await client.post(f"{P}/{pid}/lifecycle", headers=SERVICE, json={"action": action})
                    lookups = 0
                    right_after: float | None = None
                    until = changed + outage_s
                    while time.monotonic() < until:
                        answers = [await gateway.statuses.status(pid) for pid in pids]
                        lookups += len(answers)
                        if right_after is None and all(a == _target(action) for a in answers):
                            right_after = time.monotonic() - changed
                        await asyncio.sleep(0.01)
                    await proxy.restore()
                    back = time.monotonic()
                    # Right again: Redis reachable for the KV, holding the Registry's statuses (re-published),
                    # and the gateway answering them.
                    while True:
                        held = [await direct.get(f"faults:platform-status:{pid}") for pid in pids]
                        answers = [await gateway.statuses.status(pid) for pid in pids]
                        if (core.kv.available and all(h == _target(action).encode() for h in held)
                                and all(a == _target(action) for a in answers)):
                            break
                        if time.monotonic() - back > 3 * ttl_s:
                            break
                        await asyncio.sleep(0.01)
                    warnings = [e for e in logs[mark:] if e["log_level"] in ("warning", "error")
                                and not str(e["event"]).startswith("rate_limiter")]
                    results.append({"lookups": lookups, "right_during_s": right_after,
                                    "redis_attempts": core.kv.failures - failures_before,
                                    "warnings": len(warnings), "stale_after_restore_s": time.monotonic() - back})
                    await asyncio.sleep(0.2)
            await direct.aclose()
            return {"ttl_s": ttl_s, "outages": results}
    finally:
        await core.stop()
        await proxy.cut()
        redis.stop()
        await drop_db(db_url)
        shutil.rmtree(data_dir, ignore_errors=True)


def _target(action: str) -> str:
    return "suspended" if action == "suspend" else "active"


# --- 3. PostgreSQL connections dropped -------------------------------------------------------------

async def pg_drops(seconds: float, clients: int = 8, every_s: float = 0.5) -> dict[str, Any]:
    db_url = await create_db("nno_faults")
    data_dir = Path(tempfile.mkdtemp(prefix="nno-faults-"))
    # A load generator from one address: the rate limit is not what this run measures.
    settings = Settings(database_url=db_url, data_dir=data_dir, auth_api_key=KEY, embedded_worker=False,
                        rate_limit="1000000/60s")
    core = Core(settings)
    await core.start()
    killer = await asyncpg.connect(PG_ADMIN)
    codes: Counter[str] = Counter()
    terminated = 0
    try:
        transport = httpx.ASGITransport(app=core.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787", timeout=60) as client:
            r = await client.post(P, headers=SERVICE, json={"name": "PG", "slug": "pg-drops", "tier": "scale"})
            pid = r.json()["id"]
            stop_at = time.monotonic() + seconds

            async def load(c: int) -> None:
                i = 0
                while time.monotonic() < stop_at:
                    i += 1
                    if i % 3 == 0:
                        resp = await client.post(f"{P}/{pid}/tenants", headers=SERVICE,
                                                 json={"name": f"T {c} {i}", "slug": f"t-{c}-{i}"})
                        kind = "write"
                    else:
                        resp = await client.get(f"{P}/{pid}", headers=SERVICE)
                        kind = "read"
                    status = resp.status_code
                    if status == 503 and resp.headers.get("retry-after"):
                        codes[f"{kind} 503+Retry-After"] += 1
                    else:
                        codes[f"{kind} {status}"] += 1

            async def kill() -> None:
                nonlocal terminated
                name = db_url.rsplit("/", 1)[1]
                while time.monotonic() < stop_at:
                    await asyncio.sleep(every_s)
                    rows = await killer.fetch(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                        "AND pid <> pg_backend_pid()", name)
                    terminated += len(rows)

            with capture_logs() as logs:
                await asyncio.gather(kill(), *(load(c) for c in range(clients)))
            events = Counter(str(e["event"]) for e in logs if e["log_level"] in ("warning", "error", "critical"))
            return {"seconds": seconds, "outages": int(seconds / every_s), "connections_terminated": terminated,
                    "answers": dict(codes), "http_500": sum(n for k, n in codes.items() if k.endswith(" 500")),
                    "logged": dict(events)}
    finally:
        await killer.close()
        await core.stop()
        await drop_db(db_url)
        shutil.rmtree(data_dir, ignore_errors=True)


# --- the run ----------------------------------------------------------------------------------------

async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platforms", type=int, default=150)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--redis-outages", type=int, default=3)
    parser.add_argument("--pg-seconds", type=float, default=20)
    parser.add_argument("--embedded-clients", type=int, default=20)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--deadline", type=float, default=900, help="seconds the worker-kill run may take")
    args = parser.parse_args()
    # The in-process cores' warnings are counted below (captured), not printed.
    configure_logging("warning", stream=open(os.devnull, "w"))

    kills = await worker_kills(args.platforms, args.kills, deadline_s=args.deadline)
    print(f"1. worker kills: {kills['kills']} SIGKILLs aimed at running jobs over {kills['platforms']} onboardings "
          f"({kills['jobs_interrupted']} jobs interrupted) in {kills['wall_s']:.0f}s: {kills['active']} active, "
          f"{kills['failed']} failed, {kills['stuck']} stuck, {kills['duplicated']} duplicated", flush=True)
    for job_id, error in kills["failures"]:
        print(f"   not completed: {job_id}: {error}")

    redis = await redis_outages(args.redis_outages)
    for n, o in enumerate(redis["outages"], 1):
        during = "never" if o["right_during_s"] is None else f"after {o['right_during_s']:.2f}s"
        print(f"2. Redis outage {n}: {o['lookups']} gateway lookups while down (right {during}), "
              f"{o['redis_attempts']} Redis attempts, {o['warnings']} warning(s); Redis and the gateway right "
              f"{o['stale_after_restore_s']:.2f}s after Redis came back (TTL {redis['ttl_s']}s)", flush=True)

    pg = await pg_drops(args.pg_seconds) if args.pg_seconds > 0 else None
    if pg is not None:
        print(f"3. PostgreSQL drops: {pg['connections_terminated']} connections terminated in {pg['outages']} rounds "
              f"over {pg['seconds']:.0f}s; answers {pg['answers']}; HTTP 500s: {pg['http_500']}; "
              f"logged {pg['logged']}", flush=True)

    if not args.skip_embedded:
        import embedded_load

        res = await embedded_load.run_round(args.embedded_clients, 15)
        print(f"5. embedded, {args.embedded_clients} clients: tenant create p50 {res['create']['p50']:.0f} ms, "
              f"p99 {res['create']['p99']:.0f} ms (server CPU {res['create']['cpu_ms']:.1f} ms each; "
              f"GET /health p99 {res['ref']['p99']:.0f} ms in the same conditions); "
              f"list p99 {res['list']['p99']:.0f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
              flush=True)


if __name__ == "__main__":
    asyncio.run(main())
