"""`nno login --token`, `whoami`, `logout` and the failure paths, against a live server."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from nno.cli.commands import INFO, OK
from nno.iam.better_auth import iso_ms
from tests.cli.conftest import assert_clean_failure, parse_json, sign_up

# No gateway cache of validated sessions, so a revocation shows at once (DECISIONS 3).
SHARED_SETTINGS = {"auth_cache_ttl_s": 0}


def read_credentials(home: Path) -> dict:
    return json.loads((home / "credentials.json").read_text())


def test_login_with_token_stores_the_session_0600_and_whoami_reports_it(live_server, nno, nno_home):
    signed = sign_up(live_server, "ada@example.com")
    result = nno("login", "--token", signed["token"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{OK} Authenticated via token"

    assert stat.S_IMODE(nno_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((nno_home / "credentials.json").stat().st_mode) == 0o600
    stored = read_credentials(nno_home)
    assert stored["token"] == signed["token"]
    assert stored["email"] == "ada@example.com"
    assert stored["apiUrl"] == live_server.url
    assert stored["iamUrl"] == live_server.url + "/api/v1/iam"
    assert stored["refreshToken"] is None
    # Unix ms in the file; the sign-up answer (Better Auth's surface) writes the instant in ISO-8601.
    assert iso_ms(stored["expiresAt"]) == signed["session"]["expiresAt"]

    # The stored address is used when no --api-url is given.
    from typer.testing import CliRunner

    from nno.cli.main import app

    env = {"NNO_HOME": str(nno_home), "NNO_API_URL": None, "NNO_API_TOKEN": None}
    online = CliRunner().invoke(app, ["whoami"], env=env)
    assert online.exit_code == 0, online.output
    lines = online.stdout.splitlines()
    assert lines[0] == f"{OK} Authenticated as ada@example.com"
    assert lines[1].startswith(f"{INFO} Platform: ")
    assert lines[2] == f"{INFO} Role: user"
    assert lines[3].startswith(f"{INFO} Session expires: 20") and lines[3].endswith("Z")

    offline = nno("whoami", "--offline")
    assert offline.exit_code == 0
    assert offline.stdout.splitlines()[0] == f"{OK} Authenticated as ada@example.com [unverified]"
    assert all(line.endswith("[unverified]") for line in offline.stdout.splitlines())
    assert "Session expires" not in offline.stdout

    data = parse_json(nno("whoami", "--json"))
    assert data["email"] == "ada@example.com" and data["verified"] is True
    assert data["userId"] == signed["user"]["id"]


def test_login_with_a_rejected_token_stores_nothing(live_server, nno, nno_home):
    result = nno("login", "--token", "not-a-real-session-token")
    message = assert_clean_failure(result, exit_code=4)
    assert "rejected" in message and "request id" in message
    assert not (nno_home / "credentials.json").exists()


def test_whoami_and_logout_without_credentials(nno, nno_home):
    result = nno("whoami")
    assert result.exit_code == 4
    assert result.stdout.strip() == f"{INFO} Not authenticated. Run: nno login"
    assert "Traceback" not in result.output
    first = nno("logout")
    assert first.exit_code == 0 and first.stdout.strip() == f"{INFO} Not currently logged in"


def test_logout_clears_the_file_but_keeps_the_directory(live_server, nno, nno_home):
    nno("login", "--token", sign_up(live_server, "bo@example.com")["token"])
    result = nno("logout")
    assert result.exit_code == 0 and result.stdout.strip() == f"{OK} Logged out successfully"
    assert read_credentials(nno_home) == {}
    assert nno_home.is_dir()
    assert nno("logout").stdout.strip() == f"{INFO} Not currently logged in"
    assert parse_json(nno("logout", "--json"))["loggedOut"] is False
    assert nno("whoami").exit_code == 4


def test_revoked_session_gives_one_line_and_the_login_hint(live_server, nno, nno_home):
    signed = sign_up(live_server, "cy@example.com")
    assert nno("login", "--token", signed["token"]).exit_code == 0
    assert nno("apikey", "list").exit_code == 0
    out = live_server.http.post("/api/v1/iam/api/auth/sign-out",
                                headers={"Authorization": f"Bearer {signed['token']}"}, json={})
    assert out.status_code == 200, out.text
    who = nno("whoami")
    assert who.exit_code == 4
    assert who.stderr.strip() == "Session expired or revoked. Run: nno login again."
    listed = nno("apikey", "list")
    message = assert_clean_failure(listed, exit_code=4)
    first, hint = message.strip().splitlines()
    assert first.startswith("error: ") and "request id" in first
    assert hint == "Your login is missing, expired or revoked. Run: nno login"


def test_expired_stored_login_is_caught_before_any_request(live_server, nno, nno_home):
    nno("login", "--token", sign_up(live_server, "di@example.com")["token"])
    stored = read_credentials(nno_home)
    stored["expiresAt"] = int(time.time() * 1000) - 1000
    (nno_home / "credentials.json").write_text(json.dumps(stored))
    message = assert_clean_failure(nno("platform", "list"), exit_code=4)
    assert message.startswith("error: your login has expired") and "nno login" in message


def test_nno_api_token_overrides_the_stored_login(live_server, nno, nno_home):
    signed = sign_up(live_server, "ed@example.com")
    data = parse_json(nno("whoami", "--json", env={"NNO_API_TOKEN": signed["token"]}))
    assert data["email"] == "ed@example.com"
    assert not (nno_home / "credentials.json").exists()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_is_one_clear_line(nno, nno_home):
    url = f"http://127.0.0.1:{closed_port()}"
    result = nno("platform", "list", api_url=url)
    message = assert_clean_failure(result, exit_code=3)
    assert message.splitlines()[0] == f"error: cannot reach NNO at {url}: connection refused"
    assert "--api-url" in message
    who = nno("whoami", api_url=url, env={"NNO_API_TOKEN": "anything"})
    assert who.exit_code == 3
    assert who.stderr.strip() == "IAM unreachable. Use --offline to display cached credentials."


def test_server_down_in_a_real_process_prints_no_traceback(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    env = {"NNO_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "nno", "--api-url", url, "job", "show", "abc"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2  # the error and what to do


def test_bad_flag_is_a_usage_error_without_traceback(nno):
    result = nno("platform", "list", "--limit", "many")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--limit" in result.output


def test_logout_revoke_signs_the_session_out_on_the_server(live_server, nno, nno_home):
    signed = sign_up(live_server, "rev@example.com")
    nno("login", "--token", signed["token"])
    result = nno("logout", "--revoke")
    assert result.exit_code == 0 and result.stdout.strip() == f"{OK} Logged out successfully"
    check = live_server.http.get("/api/v1/iam/api/nno/session",
                                 headers={"Authorization": f"Bearer {signed['token']}"})
    assert check.status_code == 401


def test_token_login_while_the_server_is_down_is_stored_unverified(nno, nno_home):
    url = f"http://127.0.0.1:{closed_port()}"
    result = nno("login", "--token", "ci-token-value", api_url=url)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"{OK} Authenticated via token"
    stored = read_credentials(nno_home)
    assert stored["email"] is None and stored["apiUrl"] == url  # nothing verified, nothing made up
    assert stored["verifiedAt"] is None
    assert stored["expiresAt"] > (time.time() + 29 * 86400) * 1000  # token mode: 30 days
    assert stat.S_IMODE((nno_home / "credentials.json").stat().st_mode) == 0o600


def test_nno_api_url_env_chooses_the_server(live_server, nno_home):
    from typer.testing import CliRunner

    from nno.cli.main import app

    signed = sign_up(live_server, "envurl@example.com")
    env = {"NNO_HOME": str(nno_home), "NNO_API_URL": live_server.url, "NNO_API_TOKEN": signed["token"]}
    result = CliRunner().invoke(app, ["whoami", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["apiUrl"] == live_server.url
