"""`nno serve` and the local-dev bypass (DECISIONS 8): a loud startup warning when AUTH_API_KEY is
unset, and a refusal to listen on a non-loopback address then, unless `--insecure`. uvicorn.run is
replaced by a recorder, so nothing is ever bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from nno.cli.main import app
from nno.cli.serve import is_loopback


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    from nno.cli import serve

    calls: list[dict[str, Any]] = []
    # The real port is never taken here: `nno serve` binds first, then hands the socket to uvicorn.
    monkeypatch.setattr(serve, "bind_or_explain", lambda host, port: None)
    monkeypatch.setattr(serve, "start_uvicorn", lambda asgi, sock, ready, **kw: calls.append(kw))
    monkeypatch.setenv("NNO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NNO_DATABASE_URL", raising=False)
    old = structlog.get_config()
    try:
        yield calls
    finally:
        structlog.configure(**old)


def _serve(*args: str) -> Any:
    return CliRunner().invoke(app, ["serve", *args])


def _split(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a `--service` process needs to start: PostgreSQL (never reached here: nothing is served)
    and every other service's address (a closed port: not answering yet is no refusal)."""
    import socket

    from nno.kernel.config import SERVICE_NAMES

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("NNO_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/unused")
    for name in SERVICE_NAMES:
        monkeypatch.setenv(f"NNO_{name.upper()}_URL", nobody)


def test_refuses_non_loopback_without_auth_key(runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH_API_KEY", raising=False)
    result = _serve("--host", "0.0.0.0", "--port", "9")
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output
    assert runs == []


def test_insecure_flag_allows_it_with_the_warning(runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH_API_KEY", raising=False)
    result = _serve("--host", "0.0.0.0", "--port", "9", "--insecure")
    assert result.exit_code == 0, result.output
    assert "auth_bypass_enabled" in result.output
    assert runs == [{"host": "0.0.0.0", "port": 9, "log_level": "warning", "access_log": False, "lifespan": "on",
                     "proxy_headers": False}]


def test_loopback_without_key_runs_with_a_loud_warning(runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH_API_KEY", raising=False)
    result = _serve("--host", "127.0.0.1", "--port", "9")
    assert result.exit_code == 0, result.output
    assert "auth_bypass_enabled" in result.output and "AUTH_API_KEY is not set" in result.output
    assert len(runs) == 1


def test_with_auth_key_any_address_and_no_warning(runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_API_KEY", "a-real-key-0123456789")
    result = _serve("--host", "0.0.0.0", "--port", "9")
    assert result.exit_code == 0, result.output
    assert "auth_bypass_enabled" not in result.output
    assert runs and runs[0]["host"] == "0.0.0.0"


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("127.8.9.10", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.10", False), ("10.0.0.1", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_links_follow_the_served_port_unless_a_public_url_is_set(runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new user's `nno serve --port 8799` must not mail magic links pointing at :8787."""
    monkeypatch.delenv("AUTH_API_KEY", raising=False)
    monkeypatch.delenv("NNO_PUBLIC_URL", raising=False)
    result = _serve("--port", "8799")
    assert result.exit_code == 0, result.output
    assert '"publicUrl": "http://127.0.0.1:8799"' in result.output
    monkeypatch.setenv("NNO_PUBLIC_URL", "https://nno.example.com")
    result = _serve("--port", "8799")
    assert result.exit_code == 0, result.output
    assert '"publicUrl": "https://nno.example.com"' in result.output


def test_local_url_for_any_interface_and_ipv6() -> None:
    from nno.cli.serve import local_url

    assert local_url("0.0.0.0", 9) == "http://127.0.0.1:9"
    assert local_url("::1", 9) == "http://[::1]:9"
    assert local_url("localhost", 8787) == "http://localhost:8787"


def test_forwarded_headers_are_not_believed_by_default(runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's own default believes X-Forwarded-For from loopback, so any local client would pick
    the address the rate limit, sign-in throttle and audit see: `nno serve` turns that off."""
    import uvicorn

    monkeypatch.setenv("AUTH_API_KEY", "a-real-key-0123456789")
    monkeypatch.delenv("NNO_TRUSTED_PROXIES", raising=False)
    for args in ([], ["--service", "iam"]):
        if args:
            _split(monkeypatch)
        runs.clear()
        result = _serve("--port", "9", *args)
        assert result.exit_code == 0, result.output
        assert runs[0]["proxy_headers"] is False and "forwarded_allow_ips" not in runs[0]
        config = uvicorn.Config(lambda *a: None, **runs[0])
        assert config.proxy_headers is False


def test_trusted_proxies_are_an_explicit_setting(runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_API_KEY", "a-real-key-0123456789")
    monkeypatch.setenv("NNO_TRUSTED_PROXIES", " 10.0.0.5, 10.1.0.0/16,::1 ")
    for args in ([], ["--service", "registry"]):
        if args:
            _split(monkeypatch)
        runs.clear()
        result = _serve("--port", "9", *args)
        assert result.exit_code == 0, result.output
        assert runs[0]["proxy_headers"] is True
        assert runs[0]["forwarded_allow_ips"] == "10.0.0.5,10.1.0.0/16,::1"


@pytest.mark.parametrize("value", ["bogus", "10.0.0.1,example.com", "10.0.0.0/33"])
def test_a_bad_trusted_proxy_refuses_to_start(runs: list, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NNO_TRUSTED_PROXIES", value)
    result = _serve("--port", "9")
    assert result.exit_code == 2 and "NNO_TRUSTED_PROXIES" in result.output and "bug" not in result.output
    assert runs == []
