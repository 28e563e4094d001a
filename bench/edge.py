"""Edge router overhead benchmark (run by hand, not in CI).

A request to a trivial Worker through the core's ASGI app by Host (route lookup, header stripping,
worker dispatch), against the same Worker app called directly, in the same run, printed as a ratio;
plus the console page (a Pages site re-rendered per request). Rounds are interleaved and the median
is reported, because the machine is shared.

Target: the edge keeps at least 80% of the bare Worker's throughput in-process.

    .venv/bin/python bench/edge.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import structlog
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from nno.core import Core
from nno.edge.workers import WorkerEnv, register_worker_kind
from nno.kernel.config import Settings
from nno.provisioning.providers.local import LocalProvider

PID = "k3m9p2xw7q"


def hello(_: WorkerEnv | None) -> Starlette:
    async def index(_: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    return Starlette(routes=[Route("/", index)])


async def rate(app: Any, base_url: str, n: int) -> float:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client:
        for _ in range(min(100, n)):
            await client.get("/")
        start = time.perf_counter()
        for _ in range(n):
            resp = await client.get("/")
            assert resp.status_code == 200, resp.text
        return n / (time.perf_counter() - start)


async def main(requests: int, rounds: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    register_worker_kind("hello", hello)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), auth_api_key="k" * 32)
        core = Core(settings)
        await core.start()
        provider = LocalProvider(settings)
        worker = f"{PID}-default-hello"
        await provider.ensure_worker(worker, kind="hello", platform_id=PID, bindings={})
        await provider.ensure_dns(f"hello.svc.default.{PID}.nno.localhost", target=worker, platform_id=PID)
        await provider.ensure_pages(f"{PID}-prod-portal", platform_id=PID, site={"platformId": PID, "name": "x"})
        await provider.ensure_dns(f"console.app.default.{PID}.nno.localhost", target=f"{PID}-prod-portal",
                                  platform_id=PID)
        cases = {
            "bare worker app": (hello(None), "http://x"),
            "edge, DNS name": (core.asgi, f"http://hello.svc.default.{PID}.nno.localhost:8787"),
            "edge, short alias": (core.asgi, f"http://hello.{PID}.nno.localhost:8787"),
            "edge, console page": (core.asgi, f"http://{PID}.nno.localhost:8787"),
        }
        results: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, (app, url) in cases.items():
                results[name].append(await rate(app, url, requests))
        base = statistics.median(results["bare worker app"])
        for name, values in results.items():
            med = statistics.median(values)
            print(f"{name:20s} {med:9,.0f} req/s   {med / base:5.2f}x bare")
        await provider.close()
        await core.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
