"""Gateway overhead benchmark (run by hand, not in CI).

One authenticated request through the gateway's full pipeline (all ten middlewares, a cached session
lookup, the platform-status check, in-process dispatch) to a trivial service route, against the same
route on the bare service app, in the same run, printed as a ratio:

1. in-process: both ASGI apps driven directly by a minimal ASGI caller, many concurrent requests;
2. over HTTP: each app under uvicorn on loopback (a subprocess each), driven by an aiohttp client.

Target: in-process, the full pipeline keeps at least 85% of the bare route's throughput.

Beside them, a *floor*: the per-request work the seed mandates (read the credential and request id,
a UUID request id, a trace id and span, a rate-limit count, the identity and platform-status
lookups, the upstream scope with identity headers, the response's security/id/trace/timing headers,
one JSON access line written and flushed) fused into ONE coroutine, with plain dict lookups, no
layers, no hashing, no validation and no error handling. It is a measuring stick, not NNO's gateway:
no correct gateway written in Python can cost less than it, so its ratio bounds what the target can
ask of CPython.

    .venv/bin/python bench/gateway.py [--requests 20000] [--concurrency 50] [--rounds 3] [--no-http]
    .venv/bin/python bench/gateway.py --layers   # CPU per request with each layer bypassed in turn
    .venv/bin/python bench/gateway.py --instructions   # instructions per request under callgrind
                                                        # (valgrind; exact on a busy machine)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from json import encoder as json_encoder
from pathlib import Path
from typing import Any

from nno.gateway.app import create_gateway
from nno.kernel.bindings import ASGIBinding, Bindings
from nno.kernel.config import Settings
from nno.kernel.kv import MemoryKV
from nno.kernel.logging import configure_logging
from nno.kernel.service import create_service_app, wrap_service

SERVICE_KEY = "bench-service-key-0123456789abcdef"
SESSION_TOKEN = "bench-session-token-" + "x" * 24
BARE_PATH = "/ping"
GATEWAY_PATH = "/api/v1/provisioning/ping"


def service_app() -> Any:
    app = create_service_app("bench", title="bench")

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return wrap_service(app)


def fake_iam() -> Any:
    app = create_service_app("iam", title="iam")

    @app.get("/api/nno/session")
    async def session() -> dict[str, Any]:
        return {"userId": "u1", "email": "a@example.com", "role": "platform-admin", "platformId": "p1",
                "activeOrganizationId": None, "expiresAt": 0, "sessionId": "s1", "permissions": []}

    return wrap_service(app)


def build_apps(tmp: Path) -> tuple[Any, Any]:
    """(bare service app, gateway in front of the same app)."""
    settings = Settings(auth_api_key=SERVICE_KEY, data_dir=tmp, rate_limit="1000000000/60s",
                        redis_url=None, database_url=None)
    bare = service_app()
    bindings = Bindings()
    bindings.add(ASGIBinding("provisioning", bare))
    bindings.add(ASGIBinding("iam", fake_iam()))
    kv = MemoryKV()
    gateway = create_gateway(settings, bindings, kv)
    kv._data["platform-status:p1"] = ("active", None)
    return bare, gateway


_encode_json = json_encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, None, json_encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)
_FLOOR_SECURITY = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                   (b"referrer-policy", b"strict-origin-when-cross-origin"))


def floor_gateway(service: Any, log_file: Any) -> Any:
    """The floor (see the module docstring): the mandated work of one request, fused, nothing else.
    Assumes the bench's request (a known session of an active platform); not a gateway."""
    bits = random.getrandbits
    perf = time.perf_counter
    identity_headers = ((b"x-nno-user-id", b"u1"), (b"x-nno-role", b"platform-admin"),
                        (b"x-nno-platform-id", b"p1"), (b"x-nno-auth-type", b"session"))
    identities = {f"Bearer {SESSION_TOKEN}".encode(): identity_headers}
    statuses = {b"p1": "active"}
    counts: dict[str, int] = {}
    prefix = len("/api/v1/provisioning")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        start = perf()
        authorization = request_id = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"x-request-id":
                request_id = value
        if request_id is None:
            h = f"{bits(128):032x}"
            request_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}".encode()
        trace = f"{bits(128):032x}".encode()
        traceparent = b"00-%s-%016x-01" % (trace, bits(64))
        key = f"{scope['client'][0]}:{scope['path']}"
        counts[key] = counts.get(key, 0) + 1
        identity = identities.get(authorization) if authorization else None
        if identity is None or statuses.get(identity[2][1]) != "active":
            raise RuntimeError("the floor only knows the bench's request")
        upstream = dict(scope)
        upstream["path"] = scope["path"][prefix:]
        upstream["raw_path"] = upstream["path"].encode()
        headers = list(scope["headers"])
        headers += ((b"x-nno-request-id", request_id), (b"x-nno-trace-id", trace), (b"traceparent", traceparent))
        headers += identity
        upstream["headers"] = headers
        status = 500

        async def send_out(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = list(message["headers"])
                out += _FLOOR_SECURITY
                out += ((b"x-request-id", request_id), (b"x-nno-trace-id", trace), (b"traceparent", traceparent),
                        (b"server-timing", b"total;dur=%.2f" % ((perf() - start) * 1000)))
                message["headers"] = out
            await send(message)

        await service(upstream, receive, send_out)
        line = "".join(_encode_json({
            "requestId": request_id.decode(), "traceId": trace.decode(), "method": scope["method"],
            "path": scope["path"], "status": status, "duration": round((perf() - start) * 1000, 3),
            "authType": "session", "event": "request", "level": "info",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, 0))
        log_file.write(line + "\n")
        log_file.flush()

    return app


def quiet_logging(level: str = "info") -> None:
    """The production JSON log config, written to /dev/null (the rendering cost stays in).
    `--log-level warning` drops the per-request access line, to show what it costs."""
    configure_logging(level, json=True, stream=open(os.devnull, "w"))


# --- in-process -------------------------------------------------------------------------------

HEADERS = [(b"host", b"bench"), (b"user-agent", b"bench"), (b"accept", b"*/*"),
           (b"authorization", f"Bearer {SESSION_TOKEN}".encode())]


async def call(app: Any, path: str) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": HEADERS, "client": ("127.0.0.1", 5000), "server": ("bench", 80)}
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def drive(app: Any, path: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """(requests per second, latencies in seconds)."""
    latencies: list[float] = []
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            t0 = time.perf_counter()
            status = await call(app, path)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - start), latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report(label: str, bare: tuple[float, list[float]], full: tuple[float, list[float]]) -> float:
    ratio = full[0] / bare[0]
    print(f"\n{label}")
    print(f"  {'':10} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
    for name, (rps, lat) in (("bare", bare), ("gateway", full)):
        print(f"  {name:10} {rps:10.0f} {pct(lat, 0.5):9.3f} {pct(lat, 0.99):9.3f}")
    print(f"  gateway/bare throughput ratio: {ratio:.3f}  (pipeline cost {(1 - ratio) * 100:.1f}%)")
    per_req_us = (1 / full[0] - 1 / bare[0]) * 1e6
    print(f"  added wall time per request: {per_req_us:.1f} us")
    return ratio


async def cpu_per_request(app: Any, path: str, n: int) -> float:
    """Process CPU time per request, sequential: robust against other processes on a busy machine."""
    start = time.process_time()
    for _ in range(n):
        await call(app, path)
    return (time.process_time() - start) / n * 1e6


async def in_process(requests: int, concurrency: int, rounds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        bare, gateway = build_apps(Path(tmp))
        assert await call(gateway, GATEWAY_PATH) == 200  # warms the session cache
        await drive(bare, BARE_PATH, requests // 4, concurrency)
        await drive(gateway, GATEWAY_PATH, requests // 4, concurrency)
        bare_runs, full_runs = [], []
        for _ in range(rounds):  # interleaved, so machine noise hits both alike
            bare_runs.append(await drive(bare, BARE_PATH, requests, concurrency))
            full_runs.append(await drive(gateway, GATEWAY_PATH, requests, concurrency))
        best_bare = max(bare_runs, key=lambda r: r[0])
        best_full = max(full_runs, key=lambda r: r[0])
        ratios = [f[0] / b[0] for b, f in zip(bare_runs, full_runs, strict=True)]
        ratio = report(f"in-process ({requests} requests x {rounds} rounds, concurrency {concurrency}; best round)",
                       best_bare, best_full)
        print(f"  per-round ratios: {', '.join(f'{r:.3f}' for r in ratios)} (median {statistics.median(ratios):.3f})")
        floor = floor_gateway(bare, open(os.devnull, "w"))
        cpu_bare = min([await cpu_per_request(bare, BARE_PATH, 2000) for _ in range(rounds)])
        cpu_full = min([await cpu_per_request(gateway, GATEWAY_PATH, 2000) for _ in range(rounds)])
        cpu_floor = min([await cpu_per_request(floor, GATEWAY_PATH, 2000) for _ in range(rounds)])
        print(f"  CPU per request, sequential (min of {rounds}): bare {cpu_bare:.1f} us, gateway {cpu_full:.1f} us, "
              f"ratio {cpu_bare / cpu_full:.3f}, pipeline {cpu_full - cpu_bare:.1f} us")
        print(f"  floor (mandated work fused, see docstring): {cpu_floor:.1f} us, ratio {cpu_bare / cpu_floor:.3f}, "
              f"added {cpu_floor - cpu_bare:.1f} us; the target allows {cpu_bare * (1 / 0.85 - 1):.1f} us")
        return ratio


async def layer_costs(rounds: int) -> None:
    """Each middleware's marginal CPU cost: the full pipeline with that one layer bypassed. Without
    auth there is no identity, so platformLifecycle's lookup is skipped too."""
    with tempfile.TemporaryDirectory() as tmp:
        bare, gateway = build_apps(Path(tmp))
        assert await call(gateway, GATEWAY_PATH) == 200
        chain = []
        app = gateway.pipeline
        while hasattr(app, "app"):
            chain.append(app)
            app = app.app

        async def cpu(target: Any) -> float:
            return min([await cpu_per_request(target, GATEWAY_PATH, 2000) for _ in range(rounds)])

        full = await cpu(gateway.pipeline)
        print(f"\nCPU per request: full pipeline {full:.1f} us; bare route "
              f"{min([await cpu_per_request(bare, BARE_PATH, 2000) for _ in range(rounds)]):.1f} us")
        for i, layer in enumerate(chain):
            if i == 0:
                cost = await cpu(layer.app)
            else:
                chain[i - 1].app = layer.app
                try:
                    cost = await cpu(chain[0])
                finally:
                    chain[i - 1].app = layer
            print(f"  without {type(layer).__name__:30} {cost:6.1f} us  (layer ~{full - cost:+.1f} us)")


# --- instructions (callgrind) ----------------------------------------------------------------

INSTRUCTION_REQUESTS = 2000


async def _run_requests(which: str, n: int) -> None:
    """The body of one callgrind run: warm up, then `n` sequential requests to `which`."""
    with tempfile.TemporaryDirectory() as tmp:
        bare, gateway = build_apps(Path(tmp))
        app, path = {"bare": (bare, BARE_PATH), "gateway": (gateway, GATEWAY_PATH),
                     "floor": (floor_gateway(bare, open(os.devnull, "w")), GATEWAY_PATH)}[which]
        for _ in range(300):
            await call(app, path)
        for _ in range(n):
            await call(app, path)


def _collected(which: str, n: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--callgrind-run", which, "--requests", str(n)],
        capture_output=True, text=True, check=True).stderr
    found = re.search(r"Collected : (\d+)", out)
    if found is None:
        raise RuntimeError(f"callgrind printed no total:\n{out[-2000:]}")
    return int(found.group(1))


def instructions() -> None:
    """Instructions per request (a run of N requests minus a run of none), for the bare route, the
    gateway and the floor: machine load does not change them, so they compare runs across commits."""
    per: dict[str, float] = {}
    for which in ("bare", "gateway", "floor"):
        per[which] = (_collected(which, INSTRUCTION_REQUESTS) - _collected(which, 0)) / INSTRUCTION_REQUESTS
    print(f"\ninstructions per request (callgrind, {INSTRUCTION_REQUESTS} sequential requests):")
    for which, count in per.items():
        ratio = per["bare"] / count
        print(f"  {which:8} {count:10.0f}  bare/this {ratio:.3f}  added {count - per['bare']:8.0f}")
    print(f"  the target (ratio >= 0.85) allows {per['bare'] * (1 / 0.85 - 1):.0f} added instructions")


# --- over HTTP ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(which: str, port: int, log_level: str) -> None:
    import uvicorn

    quiet_logging(log_level)
    with tempfile.TemporaryDirectory() as tmp:
        bare, gateway = build_apps(Path(tmp))
        app = gateway if which == "gateway" else bare
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False, lifespan="off")


async def _wait_up(url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def drive_http(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    import aiohttp

    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {SESSION_TOKEN}"}
    per_worker = requests // concurrency
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            for _ in range(per_worker):
                t0 = time.perf_counter()
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url} answered {resp.status}")
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(latencies) / (time.perf_counter() - start), latencies


async def over_http(requests: int, concurrency: int, rounds: int, log_level: str) -> float:
    ports = {"bare": _free_port(), "gateway": _free_port()}
    procs = [subprocess.Popen([sys.executable, __file__, "--serve", which, "--port", str(port),
                               "--log-level", log_level])
             for which, port in ports.items()]
    try:
        bare_url = f"http://127.0.0.1:{ports['bare']}{BARE_PATH}"
        gw_url = f"http://127.0.0.1:{ports['gateway']}{GATEWAY_PATH}"
        await _wait_up(bare_url)
        await _wait_up(gw_url)
        await drive_http(bare_url, requests // 4, concurrency)
        await drive_http(gw_url, requests // 4, concurrency)
        bare_runs, full_runs = [], []
        for _ in range(rounds):
            bare_runs.append(await drive_http(bare_url, requests, concurrency))
            full_runs.append(await drive_http(gw_url, requests, concurrency))
        return report(f"over HTTP (uvicorn on loopback, aiohttp client; {requests} requests x {rounds} rounds, "
                      f"concurrency {concurrency}; best round)",
                      max(bare_runs, key=lambda r: r[0]), max(full_runs, key=lambda r: r[0]))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--http-requests", type=int, default=5000)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--layers", action="store_true", help="only the per-layer CPU cost breakdown")
    parser.add_argument("--log-level", default="info", help="info (default, with the access log) or warning")
    parser.add_argument("--instructions", action="store_true",
                        help="only instructions per request under callgrind (needs valgrind)")
    parser.add_argument("--serve", choices=["bare", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--callgrind-run", choices=["bare", "gateway", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.log_level)
        return
    quiet_logging(args.log_level)
    if args.callgrind_run:
        asyncio.run(_run_requests(args.callgrind_run, args.requests))
        return
    if args.instructions:
        instructions()
        return
    if args.layers:
        asyncio.run(layer_costs(args.rounds))
        return
    ratio = asyncio.run(in_process(args.requests, args.concurrency, args.rounds))
    print(f"\nin-process target (ratio >= 0.85): {'met' if ratio >= 0.85 else 'NOT met'}")
    if not args.no_http:
        asyncio.run(over_http(args.http_requests, args.concurrency, args.rounds, args.log_level))


if __name__ == "__main__":
    main()
