"""Findings of fuzzing a real `nno serve` by Host (the local cloud's Pages sites), kept as regression
tests: request paths the file system refuses (a NUL, a name or a path too long for it) used to escape
the edge router as uvicorn's plain-text 500 instead of an envelope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import nno.edge.router
from nno.core import Core
from nno.provisioning.providers.local import LocalProvider
from tests.edge.conftest import P1

At = Callable[[str], httpx.AsyncClient]
CONSOLE = f"{P1}.nno.localhost"


@pytest.fixture
async def console(provider: LocalProvider) -> str:
    site = {"platformId": P1, "name": "Acme", "status": "active", "authUrl": f"http://auth.svc.default.{CONSOLE}"}
    await provider.ensure_pages(f"{P1}-prod-portal", platform_id=P1, site=site)
    await provider.ensure_dns(f"console.app.default.{CONSOLE}", target=f"{P1}-prod-portal", platform_id=P1)
    return CONSOLE


def assert_envelope(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json", resp.headers
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["requestId"] == resp.headers["x-request-id"]


@pytest.mark.parametrize("path", [
    "/a%00b", "/index.html%00", "/%00",  # NUL: "embedded null byte"
    "/" + "a" * 300,  # one name longer than the file system allows (ENAMETOOLONG)
    "/" + "a/" * 3000,  # a whole path longer than PATH_MAX
    "/" + "a" * 300 + "/index.html",
], ids=["nul", "nul-after-index", "only-nul", "long-name", "long-path", "long-dir"])
async def test_paths_the_file_system_refuses_are_a_404_envelope(console: str, at: At, path: str) -> None:
    client = at(console)
    assert_envelope(await client.get(path), 404, "NOT_FOUND")
    assert (await client.get("/")).status_code == 200  # the site itself is fine


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.sampled_from(["a", ".", "/", "\x00", "%", "é", "\\", "a" * 120, "index.html"]),
                    max_size=60).map("".join))
async def test_any_pages_path_gets_a_page_or_an_envelope(core: Core, console: str, path: str) -> None:
    assert core.edge is not None
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": "/" + path, "raw_path": b"/", "query_string": b"",
             "headers": [(b"host", console.encode())]}
    await core.edge(scope, receive, send)  # type: ignore[arg-type]
    status = messages[0]["status"]
    assert status in (200, 404), messages
    if status == 404:
        assert messages[1]["body"].startswith(b'{"error":{"code":"NOT_FOUND"'), messages


async def test_an_unexpected_failure_serving_a_site_is_a_500_envelope(
        console: str, at: At, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(nno.edge.router, "static_file", broken)
    assert_envelope(await at(console).get("/"), 500, "INTERNAL_ERROR")
