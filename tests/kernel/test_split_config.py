"""A split deployment with one shared environment file (issue 18, goal 7): a process started for
some services serves them even though the environment also names their own URL, and reaches the
others at theirs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from structlog.testing import capture_logs

from nno.core import Core
from nno.kernel.bindings import ASGIBinding, HTTPBinding
from nno.kernel.config import Settings


async def test_its_own_service_wins_over_its_url_in_a_shared_environment(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(registry_url="http://registry.internal:8001", iam_url="http://iam.internal:8002")
    core = Core(settings, services=["registry"], with_gateway=False, with_edge=False, standalone=True)
    with capture_logs() as logs:
        await core.start()
    try:
        assert sorted(core.apps) == ["registry"]  # served here, not forwarded to itself
        assert isinstance(core.bindings.get("registry"), ASGIBinding)
        assert isinstance(core.bindings.get("iam"), HTTPBinding)  # the others stay remote
        started = next(e for e in logs if e["event"] == "core_started")
        assert started["services"] == ["registry"]
        assert started["remote"] == {"iam": "http://iam.internal:8002"}
        assert any(e["event"] == "own_service_url_ignored" and e["service"] == "registry" for e in logs)
    finally:
        await core.stop()


async def test_an_embedded_core_still_delegates_a_service_given_a_url(make_settings: Callable[..., Settings]) -> None:
    core = Core(make_settings(registry_url="http://registry.internal:8001"), with_gateway=False, with_edge=False)
    await core.start()
    try:
        assert "registry" not in core.apps
        assert isinstance(core.bindings.get("registry"), HTTPBinding)
    finally:
        await core.stop()


@pytest.fixture
def gateway_like_server() -> Iterator[str]:
    """An HTTP server whose API description has the gateway's public paths."""
    app = FastAPI()

    @app.get("/api/v1/platforms")
    async def platforms() -> dict[str, str]:
        return {}

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


async def test_at_start_it_says_which_remote_services_do_not_answer_as_a_service(
        make_settings: Callable[..., Settings], gateway_like_server: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: nothing listens
    core = Core(make_settings(iam_url=nobody, registry_url=gateway_like_server), services=["provisioning"],
                with_gateway=False, with_edge=False, standalone=True)
    with capture_logs() as logs:
        await core.start()
        assert core.remote_check is not None  # asks in the background, and again until they answer
        results = await core.check_remote_services()
    try:
        assert results == {"iam": "unreachable", "registry": "wrong"}
        warned = {e["event"]: e for e in logs if e["log_level"] in ("warning", "error")}
        assert warned["remote_service_unreachable"]["service"] == "iam"
        assert "is a gateway" in warned["remote_service_misconfigured"]["message"]
        assert "nno serve --service registry" in warned["remote_service_misconfigured"]["message"]
    finally:
        await core.stop()
