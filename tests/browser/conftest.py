"""Browser tests: the core served by uvicorn on a loopback port inside the test's event loop (so the
`core` fixture works on both backends), driven by Playwright with Debian's chromium. Chromium sends
every `*.localhost` name to loopback, so platform hosts like `{pid}.nno.localhost:{port}` resolve."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from nno.core import Core

CHROMIUM = os.environ.get("NNO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

async_api = pytest.importorskip("playwright.async_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (install Debian's chromium or set NNO_CHROMIUM)",
                allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(core: Core) -> AsyncIterator[int]:
    """The core on a loopback port; yields the port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(core.asgi, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def chromium() -> AsyncIterator[object]:
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
