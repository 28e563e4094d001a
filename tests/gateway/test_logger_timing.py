"""requestLogger (one structured line per request) and timing (Server-Timing)."""

from __future__ import annotations

import json
import re

from structlog.testing import capture_logs

from nno.gateway.middleware.request_logger import RequestLoggerMiddleware
from tests.gateway.conftest import SERVICE, SESSION_TOKEN, Harness, asgi_request, bearer

_SERVER_TIMING = re.compile(r"^([a-z]+;dur=\d+\.\d{2})(, [a-z]+;dur=\d+\.\d{2})*$")


async def test_one_log_line_per_request_with_the_fields(gw: Harness) -> None:
    with capture_logs() as logs:
        resp = await gw.client.post("/api/v1/provisioning/x?y=1", headers={**SERVICE, "X-Request-Id": "log-1"})
    lines = [e for e in logs if e["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["requestId"] == "log-1" and line["method"] == "POST" and line["path"] == "/api/v1/provisioning/x"
    assert line["status"] == resp.status_code == 200
    assert isinstance(line["duration"], float) and line["duration"] >= 0
    assert line["authType"] == "service" and line["traceId"] == resp.headers["x-nno-trace-id"]


async def test_logs_refusals_with_their_status(gw: Harness) -> None:
    with capture_logs() as logs:
        await gw.client.get("/api/v1/provisioning/x")
    assert [e["status"] for e in logs if e["event"] == "request"] == [401]


async def test_logs_a_crash_as_500_and_reraises() -> None:
    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("x")

    with capture_logs() as logs:
        try:
            await asgi_request(RequestLoggerMiddleware(inner), "GET", "/x")
        except RuntimeError:
            pass
    assert [e["status"] for e in logs if e["event"] == "request"] == [500]


async def test_log_line_is_json_with_the_kernel_config(gw: Harness, capsys) -> None:  # type: ignore[no-untyped-def]
    import structlog

    from nno.kernel.logging import configure_logging

    old = structlog.get_config()
    configure_logging("info", json=True)
    try:
        await gw.client.get("/health", headers={"X-Request-Id": "json-1"})
    finally:
        structlog.configure(**old)
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    request_lines = [x for x in lines if x.get("event") == "request"]
    assert request_lines and request_lines[0]["requestId"] == "json-1" and request_lines[0]["status"] == 200
    assert request_lines[0]["level"] == "info" and "timestamp" in request_lines[0]


async def test_server_timing_header(gw: Harness) -> None:
    resp = await gw.client.get("/api/v1/provisioning/x", headers=bearer(SESSION_TOKEN))
    assert _SERVER_TIMING.match(resp.headers["server-timing"])
    assert "auth;dur=" in resp.headers["server-timing"]  # IAM was asked
    again = await gw.client.get("/api/v1/provisioning/x", headers=bearer(SESSION_TOKEN))
    assert again.headers["server-timing"].startswith("total;dur=")  # cached: no auth phase


async def test_server_timing_on_errors_too(gw: Harness) -> None:
    resp = await gw.client.get("/nowhere")
    assert resp.status_code == 404 and _SERVER_TIMING.match(resp.headers["server-timing"])
