"""CLI pieces that need no server: the device-flow polling rules, envelope parsing, credentials
file permissions, slugs, and the fast start of `nno --help`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.cli import credentials, device
from nno.cli.client import APIClient, error_from_response
from nno.cli.commands.platform import slugify
from nno.cli.errors import CLIError, ExitCode

# ---- device flow -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def scripted_iam(answers: list[tuple[int, dict[str, Any]]], seen: list[dict[str, Any]]) -> httpx.MockTransport:
    """IAM's token endpoint answering from a script; records the bodies it got."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == device.TOKEN_PATH
        assert "authorization" not in request.headers
        seen.append(json.loads(request.content))
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


def code(interval: float = 2, expires_in: float = 600) -> device.DeviceCode:
    return device.DeviceCode.parse({"device_code": "dev-secret", "user_code": "ABCD-EFGH",
                                    "verification_uri": "http://x/activate", "interval": interval,
                                    "expires_in": expires_in})


def pending() -> tuple[int, dict[str, Any]]:
    return 400, {"error": "authorization_pending", "error_description": "waiting"}


def test_poll_waits_the_interval_and_adds_five_seconds_on_slow_down() -> None:
    clock, seen = FakeClock(), []
    answers = [pending(), (400, {"error": "slow_down"}), pending(), (200, {"access_token": "tok",
                                                                          "token_type": "Bearer"})]
    with APIClient("http://iam.test", transport=scripted_iam(answers, seen)) as client:
        granted = device.poll_for_token(client, code(interval=2), sleep=clock.sleep, clock=clock)
    assert granted["access_token"] == "tok"
    assert clock.sleeps == [2, 2, 7, 7]
    assert all(body == {"grant_type": device.GRANT_TYPE, "device_code": "dev-secret",
                        "client_id": device.CLIENT_ID} for body in seen)


@pytest.mark.parametrize(("error", "words"), [("access_denied", "denied"), ("expired_token", "expired")])
def test_poll_stops_on_denial_and_expiry(error: str, words: str) -> None:
    clock, seen = FakeClock(), []
    answers = [pending(), (400, {"error": error})]
    with APIClient("http://iam.test", transport=scripted_iam(answers, seen)) as client, \
            pytest.raises(CLIError) as caught:
        device.poll_for_token(client, code(), sleep=clock.sleep, clock=clock)
    assert words in caught.value.message
    assert caught.value.exit_code == ExitCode.AUTH
    assert "nno login" in (caught.value.hint or "")
    assert len(seen) == 2


def test_poll_gives_up_when_the_code_lifetime_is_over() -> None:
    clock, seen = FakeClock(), []
    answers = [pending() for _ in range(10)]
    with APIClient("http://iam.test", transport=scripted_iam(answers, seen)) as client, \
            pytest.raises(CLIError, match="expired"):
        device.poll_for_token(client, code(interval=5, expires_in=12), sleep=clock.sleep, clock=clock)
    assert len(seen) == 3  # at 5 s, 10 s, 15 s (past the 12 s lifetime)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(st.sampled_from(["authorization_pending", "slow_down"]), max_size=12),
       interval=st.integers(min_value=1, max_value=10))
def test_poll_interval_only_grows_by_five_per_slow_down(script: list[str], interval: int) -> None:
    clock, seen = FakeClock(), []
    answers: list[tuple[int, dict[str, Any]]] = [(400, {"error": e}) for e in script]
    answers.append((200, {"access_token": "t"}))
    with APIClient("http://iam.test", transport=scripted_iam(answers, seen)) as client:
        device.poll_for_token(client, code(interval=interval, expires_in=10**9), sleep=clock.sleep, clock=clock)
    expected, current = [], float(interval)
    for answer in [*script, "ok"]:
        expected.append(current)
        if answer == "slow_down":
            current += 5
    assert clock.sleeps == expected


def test_device_code_without_a_code_is_a_clear_error() -> None:
    with pytest.raises(CLIError, match="without a device code"):
        device.DeviceCode.parse({"user_code": "X"})


# ---- envelopes -----------------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@settings(max_examples=50, deadline=None)
@given(status=st.sampled_from([400, 401, 403, 404, 409, 410, 429, 451, 500, 503]), code=texts,
       message=texts, request_id=texts)
def test_any_envelope_becomes_its_message_and_request_id(status: int, code: str, message: str,
                                                         request_id: str) -> None:
    request = httpx.Request("GET", "http://nno.test/api/v1/platforms")
    response = httpx.Response(status, json={"error": {"code": code, "message": message, "details": None,
                                                      "requestId": request_id}}, request=request)
    err = error_from_response(response)
    assert (err.message, err.code, err.request_id, err.status) == (message, code, request_id, status)
    assert err.exit_code == (ExitCode.AUTH if status in (401, 403) else ExitCode.ERROR)
    rendered = err.render()
    assert rendered.startswith(f"error: {message}") and request_id in rendered


def test_non_envelope_error_still_names_status_and_header_request_id() -> None:
    request = httpx.Request("POST", "http://nno.test/x")
    response = httpx.Response(502, text="<html>bad gateway</html>", headers={"X-Request-Id": "rid-1"},
                              request=request)
    err = error_from_response(response)
    assert "502" in err.message and err.request_id == "rid-1"


def test_451_and_401_carry_what_to_do() -> None:
    request = httpx.Request("GET", "http://nno.test/x")
    suspended = error_from_response(httpx.Response(451, json={"error": {
        "code": "PLATFORM_SUSPENDED", "message": "This platform has been suspended.", "requestId": "r"}},
        request=request))
    assert "restore" in (suspended.hint or "")
    expired = error_from_response(httpx.Response(401, json={"error": {
        "code": "UNAUTHORIZED", "message": "Invalid session", "requestId": "r"}}, request=request))
    assert "nno login" in (expired.hint or "")


# ---- credentials file ----------------------------------------------------------------------------


def test_credentials_are_written_atomically_0600_in_a_0700_directory(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "nno-home"
    monkeypatch.setenv("NNO_HOME", str(home))
    old = os.umask(0o022)
    try:
        path = credentials.save({"token": "t1", "email": "a@b.c"})
    finally:
        os.umask(old)
    assert path == home / "credentials.json"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.load() == {"token": "t1", "email": "a@b.c"}
    credentials.save({"token": "t2"})
    assert [p.name for p in home.iterdir()] == ["credentials.json"]  # no temp file left behind
    assert credentials.clear() is True
    assert json.loads(path.read_text()) == {}
    assert credentials.clear() is False
    assert home.is_dir()


def test_credentials_home_follows_home_when_nno_home_is_unset(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NNO_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert credentials.credentials_path() == tmp_path / ".nno" / "credentials.json"


def test_corrupt_credentials_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNO_HOME", str(tmp_path))
    (tmp_path / "credentials.json").write_text("{not json")
    with pytest.raises(CLIError, match="not valid JSON"):
        credentials.load()


# ---- slugs ---------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=80))
def test_slugify_gives_a_valid_slug_or_nothing(name: str) -> None:
    slug = slugify(name)
    assert len(slug) <= 63
    assert all(c.isascii() and ((c.isalnum() and not c.isupper()) or c == "-") for c in slug)
    assert not slug.startswith("-") and "--" not in slug


# ---- fast start ----------------------------------------------------------------------------------

HEAVY = ("httpx", "rich", "fastapi", "sqlalchemy", "uvicorn", "starlette", "pydantic")


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from nno.cli.main import app\n"
        "try:\n    app(['--help'], prog_name='nno')\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert "Usage: nno" in out.stdout
    heavy = out.stdout.rsplit("HEAVY=", 1)[1].strip()
    assert heavy == "", f"nno --help imported {heavy}"


# ---- failed jobs ---------------------------------------------------------------------------------


def test_failed_step_is_found_before_and_after_rollback() -> None:
    from nno.cli.follow import job_failure

    steps = [{"name": "a", "status": "completed"}, {"name": "b", "status": "failed", "error": "boom"},
             {"name": "c", "status": "pending"}]
    assert job_failure({"status": "FAILED", "steps": steps}) == ("b", "boom")
    rolled = [{"name": "a", "status": "rolled_back"}, {"name": "b", "status": "rolled_back", "error": "boom"},
              {"name": "c", "status": "pending"}]
    assert job_failure({"status": "ROLLED_BACK", "steps": rolled}) == ("b", "boom")
    assert job_failure({"status": "FAILED", "steps": [], "error": "lost"}) == (None, "lost")


def test_version_and_help_list_every_command_group() -> None:
    from typer.testing import CliRunner

    from nno import __version__
    from nno.cli.main import app

    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.strip() == f"nno {__version__}"
    helped = runner.invoke(app, ["--help"])
    assert helped.exit_code == 0
    for command in ("serve", "login", "logout", "whoami", "platform", "tenant", "apikey", "job", "audit", "admin"):
        assert f"\n  {command} " in helped.stdout, command
