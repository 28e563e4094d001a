"""`nno serve` as a new user runs it: a real process, a real port, no external service."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.embedded_only
def test_nno_serve_runs_embedded_with_no_services(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nno", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 60
        resp = None
        while time.time() < deadline:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        assert resp is not None, f"server did not start: {proc.stderr.read() if proc.stderr else ''}"
        assert resp.status_code == 200 and resp.text == "ok"
        assert resp.headers["x-content-type-options"] == "nosniff"
        missing = httpx.get(f"http://127.0.0.1:{port}/api/v1/nothing-here", timeout=5)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
        assert (tmp_path / "data").is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "auth_bypass_enabled" in err  # the loud local-dev warning


def test_nno_serve_refuses_public_address_without_auth(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "nno", "serve", "--host", "0.0.0.0", "--port", str(_free_port()),
         "--data-dir", str(tmp_path / "d")],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0" in proc.stderr
    assert "Traceback" not in proc.stderr


def _rate_limited_statuses(port: int, env_extra: dict[str, str], tmp: Path) -> list[int]:
    """Start `nno serve` with a 3/60s limit and send four requests to /health from this (loopback)
    client, each claiming another address in X-Forwarded-For."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_") and k != "AUTH_API_KEY"}
    env.update({"NNO_RATE_LIMIT": "3/60s", "AUTH_API_KEY": "a-real-key-0123456789", **env_extra})
    proc = subprocess.Popen(
        [sys.executable, "-m", "nno", "serve", "--port", str(port), "--data-dir", str(tmp)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        return [httpx.get(f"http://127.0.0.1:{port}/health", headers={"X-Forwarded-For": f"198.51.100.{i}"},
                          timeout=10).status_code for i in range(4)]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.mark.embedded_only  # a real server on its own data dir; what it tests is uvicorn's header handling
def test_nno_serve_believes_x_forwarded_for_only_from_trusted_proxies(tmp_path: Path) -> None:
    # Loopback is no proxy by default: every request is the same client, whatever it claims.
    assert _rate_limited_statuses(_free_port(), {}, tmp_path / "a") == [200, 200, 200, 429]
    # Named as a proxy, loopback's X-Forwarded-For is the client: four clients, four budgets.
    trusted = _rate_limited_statuses(_free_port(), {"NNO_TRUSTED_PROXIES": "127.0.0.1"}, tmp_path / "b")
    assert trusted == [200, 200, 200, 200]
