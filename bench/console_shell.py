"""How fast does a platform's console shell paint, and how heavy is it? Starts `nno serve` in the
local-dev bypass on a free loopback port, onboards a platform with the `tasks` feature, signs a user
up in Chromium, then loads the shell's home N times and reports first contentful paint (the first
meaningful paint of a server-rendered page) and the bytes the shell itself sends (its HTML, CSS and
the vendored htmx; not the features' pages). Aims: < 300 ms and < 100 KB.

    .venv/bin/python bench/console_shell.py [N]
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
from playwright.async_api import async_playwright

CHROMIUM = os.environ.get("NNO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PROV = "/api/v1/provisioning/provision"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def job(c: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    resp = await c.post(PROV + path, json=body)
    resp.raise_for_status()
    job_id = resp.json()["jobId"]
    for _ in range(1200):
        status = (await c.get(f"{PROV}/jobs/{job_id}")).json()["status"]
        if status == "COMPLETED":
            return
        if status in ("FAILED", "ROLLED_BACK", "ROLLBACK_FAILED"):
            raise RuntimeError(f"job {path} {status}")
        await asyncio.sleep(0.1)
    raise RuntimeError(f"job {path} did not finish")


async def measure(port: int, runs: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        made = await c.post("/api/v1/platforms", json={"name": "Bench Co", "slug": f"bench-{port}"})
        made.raise_for_status()
        pid = made.json()["id"]
        await job(c, "/platform", {"platformId": pid})
        tenants = (await c.get(f"/api/v1/platforms/{pid}/tenants")).json()["data"]
        await job(c, "/feature/activate", {"platformId": pid, "entityId": tenants[0]["id"] if tenants else "default",
                                           "featureId": "tasks", "featureVersion": "latest", "environment": "prod"})
    base = f"http://{pid}.nno.localhost:{port}"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await (await browser.new_context()).new_page()
        await page.goto(base + "/sign-up")
        await page.get_by_label("Name").fill("Bench")
        await page.get_by_label("Email").fill("bench@example.com")
        await page.get_by_label("Password").fill("a long enough password")
        await page.get_by_role("button", name="Create account").click()
        await page.wait_for_url("**/tenants")
        await page.get_by_label("New tenant").fill("Bench team")
        await page.get_by_role("button", name="Create tenant").click()
        await page.wait_for_url(base + "/")
        paints, loads, weights = [], [], []
        for _ in range(runs):
            await page.goto(base + "/", wait_until="load")
            timing = await page.evaluate("""async () => {
                const fcp = await new Promise(done => {
                    const seen = performance.getEntriesByName('first-contentful-paint')[0];
                    if (seen) return done(seen);
                    new PerformanceObserver(list => done(list.getEntriesByName('first-contentful-paint')[0]))
                        .observe({type: 'paint', buffered: true});
                    setTimeout(() => done(null), 2000);
                });
                const nav = performance.getEntriesByType('navigation')[0];
                const own = performance.getEntriesByType('resource').filter(r => r.name.includes('/_shell/'));
                return {fcp: fcp ? fcp.startTime : null, load: nav.loadEventEnd,
                        bytes: nav.encodedBodySize + own.reduce((n, r) => n + r.encodedBodySize, 0)};
            }""")
            if timing["fcp"] is not None:
                paints.append(timing["fcp"])
            loads.append(timing["load"])
            weights.append(timing["bytes"])
        await browser.close()
    cold = weights[0]
    print(f"console shell of {pid} on loopback, N={runs} ({len(paints)} paints reported)")
    print(f"first contentful paint  median {statistics.median(paints):6.1f} ms   max {max(paints):6.1f} ms")
    print(f"load event              median {statistics.median(loads):6.1f} ms")
    print(f"shell asset weight      {cold / 1024:6.1f} KB (HTML + shell.css + htmx, uncached, uncompressed)")
    print(f"aims: < 300 ms {'met' if statistics.median(paints) < 300 else 'MISSED'}, "
          f"< 100 KB {'met' if cold < 100 * 1024 else 'MISSED'}")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    port = free_port()
    data = tempfile.mkdtemp(prefix="nno-bench-shell-")
    env = {k: v for k, v in os.environ.items() if k not in ("AUTH_API_KEY", "NNO_DATABASE_URL", "NNO_REDIS_URL")}
    env["NNO_LOG_LEVEL"] = "warning"
    proc = subprocess.Popen([sys.executable, "-m", "nno", "serve", "--port", str(port), "--data-dir", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("nno serve did not start") from None
                time.sleep(0.1)
        asyncio.run(measure(port, runs))
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
