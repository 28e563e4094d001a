"""Billing's usage ingest into PostgreSQL, and the cost of counting a Worker request, by hand (not CI):

    .venv/bin/python bench/billing_ingest.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                                             [--events 200000] [--batch 5000] [--rounds 3] [--no-http]

Creates a scratch PostgreSQL database and runs Billing's migrations into schema `billing`. Then, in
interleaved rounds (the machine is shared, so the median is printed), ingests fresh usage events in
batches of `--batch`:
- through the service layer (one INSERT ... ON CONFLICT DO NOTHING per batch);
- through the ingest route over HTTP: the Billing app served by uvicorn on a loopback socket (as
  in the scaled mode), and the same app in-process (as the embedded core's bindings call it).
  Bodies are encoded before the clock starts: the reporter (the edge's meter) encodes in its own
  process. Validation, JSON parsing, auth and the response are all timed;
then the same events again (every one a duplicate, ignored). It prints events per second and the
HTTP/service ratio.

Last, the cost of counting: `WorkerMeter.count` (the edge's per-request hook) alone, and a request to
a trivial Worker through the embedded core's edge with the meter on and off, interleaved.
The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from nno.billing.app import MIGRATIONS_DIR, create_app
from nno.billing.config import BillingSettings
from nno.billing.provider import LocalProvider
from nno.billing.service import BillingService
from nno.billing.views import SERVICE_KEY
from nno.core import Core
from nno.edge.metering import WorkerMeter
from nno.edge.workers import WorkerEnv, register_worker_kind
from nno.kernel.bindings import Bindings
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.kv import MemoryKV
from nno.kernel.migrations import upgrade
from nno.kernel.service import ServiceContext
from nno.provisioning.providers.local import LocalProvider as CloudProvider

METRICS = ("worker_invocations", "d1_rows_read", "d1_rows_written", "kv_reads")
PID = "k3m9p2xw7q"


def events(n: int, prefix: str) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [{"id": f"{prefix}-{i}", "platformId": f"p{i % 500:09d}", "tenantId": f"t{i % 37}",
             "metric": METRICS[i % len(METRICS)], "quantity": 1 + i % 97, "timestamp": now - i}
            for i in range(n)]


def bodies(batch: list[dict[str, Any]], size: int) -> list[bytes]:
    return [json.dumps({"events": batch[i:i + size]}).encode() for i in range(0, len(batch), size)]


async def service_rate(svc: BillingService, batch: list[dict[str, Any]], size: int) -> tuple[float, int]:
    inserted = 0
    t0 = time.perf_counter()
    for i in range(0, len(batch), size):
        inserted += (await svc.ingest(batch[i:i + size]))["inserted"]
    return len(batch) / (time.perf_counter() - t0), inserted


async def http_rate(client: httpx.AsyncClient, payloads: list[bytes], n: int) -> tuple[float, int]:
    headers = {**SERVICE_IDENTITY.to_headers(), "content-type": "application/json"}
    inserted = 0
    t0 = time.perf_counter()
    for body in payloads:
        resp = await client.post("/usage/events", content=body, headers=headers)
        assert resp.status_code == 200, resp.text
        inserted += resp.json()["inserted"]
    return n / (time.perf_counter() - t0), inserted


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


def hello(_: WorkerEnv | None) -> Starlette:
    async def index(_: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    return Starlette(routes=[Route("/", index)])


async def counting_cost(requests: int, rounds: int) -> None:
    """ns per `count()`, and a request to a trivial Worker through the edge with the meter on and off."""

    class W:
        platform_id, name = PID, f"{PID}-default-hello"

    meter, worker = WorkerMeter(Bindings()), W()
    n = 200_000
    t0 = time.perf_counter_ns()
    for _ in range(n):
        meter.count(worker)
    per_count = (time.perf_counter_ns() - t0) / n

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    register_worker_kind("hello", hello)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), auth_api_key="k" * 32, rate_limit="100000000/60s")
        core = Core(settings, services=["iam", "registry", "billing"])
        await core.start()
        provider = CloudProvider(settings)
        try:
            name = f"{PID}-default-hello"
            await provider.ensure_worker(name, kind="hello", platform_id=PID, bindings={})
            await provider.ensure_dns(f"hello.svc.default.{PID}.nno.localhost", target=name, platform_id=PID)
            router = core.context("edge").extras["router"]
            edge_meter = router.meter
            times: dict[str, list[float]] = {"meter on": [], "meter off": []}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                         base_url=f"http://hello.svc.default.{PID}.nno.localhost:8787") as client:
                for _ in range(100):
                    await client.get("/")
                for _ in range(rounds):
                    for label, m in (("meter on", edge_meter), ("meter off", None)):
                        router.meter = m
                        t0 = time.perf_counter_ns()
                        for _ in range(requests):
                            resp = await client.get("/")
                            assert resp.status_code == 200, resp.text
                        times[label].append((time.perf_counter_ns() - t0) / requests)
            router.meter = edge_meter
        finally:
            await provider.close()
            await core.stop()
    on, off = statistics.median(times["meter on"]), statistics.median(times["meter off"])
    print(f"counting: WorkerMeter.count {per_count:,.0f} ns per request; a request to a trivial Worker through "
          f"the edge {on / 1000:,.0f} µs (median of {rounds} rounds): counting is {100 * per_count / on:.3f}% "
          f"of it")
    print(f"counting: the same request with the meter off {off / 1000:,.0f} µs (on - off = {(on - off) / 1000:+,.1f} "
          f"µs, within the noise of a shared machine)")


async def main(pg: str, n: int, size: int, rounds: int, with_http: bool, requests: int) -> None:
    name = f"nno_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = pg.rsplit("/", 1)[0] + "/" + name
    db = Database(url, schema="billing")
    try:
        await upgrade(db, Path(MIGRATIONS_DIR))  # type: ignore[arg-type]
        settings = Settings(data_dir=Path("/tmp/nno-bench-billing"), database_url=url)
        ctx = ServiceContext(name="billing", settings=settings, db=db, bindings=Bindings(), kv=MemoryKV())
        app = create_app(ctx)
        svc: BillingService = ctx.extras[SERVICE_KEY]
        assert isinstance(svc.provider, LocalProvider) and isinstance(svc.settings, BillingSettings)
        await service_rate(svc, events(size, "warm"), size)
        per = max(size, n // rounds)
        rates: dict[str, list[float]] = {"service": [], "service, duplicates": []}
        server = task = None
        if with_http:
            server, task, base = await serve(app)
            rates.update({"HTTP (uvicorn, loopback)": [], "HTTP (in-process ASGI)": [], "HTTP, duplicates": []})
        async with httpx.AsyncClient(base_url=base if with_http else "http://x", timeout=60) as sock, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing",
                                  timeout=60) as inproc:
            for r in range(rounds):
                batch = events(per, f"s{r}")
                rate, inserted = await service_rate(svc, batch, size)
                assert inserted == per
                rates["service"].append(rate)
                rate, inserted = await service_rate(svc, batch, size)
                assert inserted == 0
                rates["service, duplicates"].append(rate)
                if not with_http:
                    continue
                payloads = bodies(events(per, f"h{r}"), size)
                rate, inserted = await http_rate(sock, payloads, per)
                assert inserted == per
                rates["HTTP (uvicorn, loopback)"].append(rate)
                rate, inserted = await http_rate(sock, payloads, per)
                assert inserted == 0
                rates["HTTP, duplicates"].append(rate)
                rate, inserted = await http_rate(inproc, bodies(events(per, f"a{r}"), size), per)
                assert inserted == per
                rates["HTTP (in-process ASGI)"].append(rate)
        if server is not None and task is not None:
            server.should_exit = True
            await task
        base_rate = statistics.median(rates["service"])
        print(f"ingest into PostgreSQL, batches of {size}, {per} new events per round, median of {rounds} rounds:")
        for label, values in rates.items():
            med = statistics.median(values)
            print(f"  {label:28s} {med:9,.0f} events/s   {med / base_rate:4.2f}x the service layer")
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    await counting_cost(requests, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2_000, help="Worker requests per round (counting cost)")
    parser.add_argument("--no-http", dest="http", action="store_false")
    args = parser.parse_args()
    asyncio.run(main(args.pg, args.events, args.batch, args.rounds, args.http, args.requests))
