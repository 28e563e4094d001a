"""A real NNO server (uvicorn in a thread, as the CLI tests use) and Debian's Chromium driven by
Playwright. Playwright's own browser download is not used: the system `chromium` is launched."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nno.kernel.config import Settings
from tests.cli.conftest import LiveServer, serve_core

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """docs/screenshots/ when NNO_SCREENSHOTS=1 (to refresh the docs), else a temporary folder, so
    an ordinary test run does not rewrite the committed images."""
    import os

    return DOCS_SCREENSHOTS if os.environ.get("NNO_SCREENSHOTS") == "1" else tmp_path / "screenshots"


@pytest.fixture
def live(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[LiveServer]:
    with serve_core(lambda url: make_settings(public_url=url), tmp_path / "server.log") as server:
        yield server


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
