"""IAM benchmark (run by hand, not in CI): what authentication costs.

(embedded backend: SQLite.)

1. argon2id with the production parameters: one hash, one verify (the floor of every sign-in);
2. the gateway's uncached session check, IAM `GET /api/nno/session`, in-process, concurrent;
3. the gateway's uncached API-key check, IAM `POST /api/nno/apikey/validate`;
4. a whole authenticated request through the gateway with its credential cache warm, to show how
   much of (2) the cache saves, as a ratio.

    .venv/bin/python bench/iam.py [--requests 2000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from argon2 import PasswordHasher

from nno.core import Core
from nno.kernel.config import Settings
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.logging import configure_logging

SERVICE_KEY = "bench-service-key-0123456789abcdef"


async def run(n: int, concurrency: int, call: Callable[[], Awaitable[int]]) -> tuple[float, float, float]:
    """(requests per second, p50 ms, p99 ms)."""
    latencies: list[float] = []
    queue = iter(range(n))

    async def worker() -> None:
        for _ in queue:
            start = time.perf_counter()
            status = await call()
            latencies.append((time.perf_counter() - start) * 1000)
            assert status == 200, status

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return n / elapsed, statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


async def main(args: argparse.Namespace) -> None:
    configure_logging("warning", json=True)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    hasher = PasswordHasher()
    t = time.perf_counter()
    digest = hasher.hash("correct-horse-9")
    hash_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    hasher.verify(digest, "correct-horse-9")
    verify_ms = (time.perf_counter() - t) * 1000
    print(f"argon2id (t={hasher.time_cost}, m={hasher.memory_cost} KiB): hash {hash_ms:.0f} ms, "
          f"verify {verify_ms:.0f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        # The gateway's per-IP limit would otherwise stop a benchmark from one address.
        settings = Settings(auth_api_key=SERVICE_KEY, data_dir=Path(tmp), rate_limit="100000000/60s")
        core = Core(settings, services=["iam"], with_edge=False)
        await core.start()
        try:
            iam = core.bindings["iam"]
            svc = SERVICE_IDENTITY.to_headers()
            up = await iam.request("POST", "/api/auth/sign-up/email",
                                   json={"email": "bench@example.com", "password": "correct-horse-9", "name": "B"})
            token = up.json()["token"]
            await iam.request("POST", "/api/nno/platform-members", headers=svc,
                              json={"platformId": "benchplat1", "userId": up.json()["user"]["id"],
                                    "role": "platform-admin"})
            key = (await iam.request("POST", "/api/nno/apikey", headers={"authorization": f"Bearer {token}"},
                                     json={"name": "bench", "platformId": "benchplat1"})).json()["key"]
            bearer = {"authorization": f"Bearer {token}"}

            async def session() -> int:
                return (await iam.request("GET", "/api/nno/session", headers=bearer)).status

            async def validate() -> int:
                return (await iam.request("POST", "/api/nno/apikey/validate", headers=svc,
                                          json={"key": key})).status

            gateway = core.gateway
            assert gateway is not None

            async def through_gateway() -> int:
                status = 0

                async def receive() -> dict[str, object]:
                    return {"type": "http.request", "body": b"", "more_body": False}

                async def send(message: dict[str, object]) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = int(message["status"])  # type: ignore[call-overload]

                scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                         "scheme": "http", "path": "/api/v1/iam/api/auth/profile",
                         "raw_path": b"/api/v1/iam/api/auth/profile", "query_string": b"", "root_path": "",
                         "headers": [(b"host", b"127.0.0.1:8787"), (b"authorization", f"Bearer {token}".encode())],
                         "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8787), "state": {}}
                await gateway(scope, receive, send)  # type: ignore[arg-type]
                return status

            for label, call in (("IAM /api/nno/session (uncached check)", session),
                                ("IAM /api/nno/apikey/validate (uncached check)", validate),
                                ("gateway + IAM /api/auth/profile (cache warm)", through_gateway)):
                await run(min(200, args.requests), args.concurrency, call)  # warm-up
                rps, p50, p99 = await run(args.requests, args.concurrency, call)
                print(f"{label:48s} {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        finally:
            await core.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
