"""`nno serve` for humans: one plain "ready" line, and a taken port is one clear error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}


@pytest.mark.embedded_only
def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "nno", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d")],
            env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another nno serve?)",
        "Stop the other server, or choose another port: nno serve --port 8788",
    ]
    assert done.stdout == ""


@pytest.mark.embedded_only
def test_serve_says_ready_once_in_plain_words(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nno", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and not line:
            line = proc.stdout.readline().strip()
        assert line == f"NNO ready at http://127.0.0.1:{port} (embedded; data in {tmp_path / 'd'})"
    finally:
        proc.terminate()
        proc.wait(30)


async def test_a_started_server_keeps_its_startup_heap_out_of_the_collectors_sight(tmp_path: Path) -> None:
    """Full collections in the middle of requests were the tail of request latency: what the server
    holds for life is frozen once its core has started, before it says it accepts requests."""
    import gc

    from nno.cli.serve import build_app
    from nno.kernel.config import Settings

    app = build_app(Settings(data_dir=tmp_path / "d"), [])
    sent: list[tuple[str, int]] = []
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, str]:
        return next(incoming)

    async def send(message: dict[str, str]) -> None:
        sent.append((message["type"], gc.get_freeze_count()))

    gc.unfreeze()
    try:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        assert [kind for kind, _ in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert sent[0][1] > 10_000  # the apps, routes and models, frozen before the server said ready
    finally:
        gc.unfreeze()
