"""`nno login` through the OAuth device flow, approved (or denied) on IAM's `/activate` page.

`nno login` runs as a real subprocess so the test can read the code it prints while it polls; the
"browser" is an httpx client that signs in through the API and submits the activation form with
its session cookie and CSRF token.
"""

from __future__ import annotations

import json
import os
import queue
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import LiveServer, sign_up

CODE_LINE = re.compile(r"│\s+([A-Z0-9]{4}-[A-Z0-9]{4})\s+│")
CSRF = re.compile(r"name=csrf_token value='([^']+)'")


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    # IAM's interval is 5 s; 1 s keeps the test short and still exercises real polling.
    monkeypatch.setattr("nno.iam.device.DEVICE_POLL_INTERVAL_S", 1, raising=False)


class LoginProcess:
    def __init__(self, server: LiveServer, home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NNO_API_URL", "NNO_API_TOKEN", "AUTH_API_KEY")}
        env.update({"NNO_HOME": str(home), "PYTHONUNBUFFERED": "1"})
        self.proc = subprocess.Popen([sys.executable, "-m", "nno", "--api-url", server.url, "login"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_code(self, timeout: float = 60) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"nno login ended early: {self.seen} {self.proc.stderr.read()}")
            self.seen.append(line)
            if match := CODE_LINE.search(line):
                return match.group(1)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        rest = []
        while (line := self.lines.get(timeout=timeout)) is not None:
            rest.append(line)
        self.seen.extend(rest)
        assert self.proc.stderr is not None
        return code, "\n".join(self.seen), self.proc.stderr.read()


@pytest.fixture
def login_process(live_server: LiveServer, nno_home: Path) -> Iterator[LoginProcess]:
    process = LoginProcess(live_server, nno_home)
    yield process
    if process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait()


def browser_decides(server: LiveServer, email: str, password: str, user_code: str, action: str) -> str:
    """Sign in through the API (the cookie lands in the jar), then use the /activate form."""
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        signed_in = browser.post("/api/v1/iam/api/auth/sign-in/email", json={"email": email, "password": password})
        assert signed_in.status_code == 200, signed_in.text
        assert browser.cookies.get("nno_session")
        page = browser.get("/api/v1/iam/activate", params={"user_code": user_code})
        assert page.status_code == 200, page.text
        assert "nno-cli" in page.text  # the page names the application asking
        token = CSRF.search(page.text)
        assert token, page.text
        done = browser.post("/api/v1/iam/activate",
                            data={"csrf_token": token.group(1), "user_code": user_code, "action": action})
        assert done.status_code == 200, done.text
        return done.text


def test_device_login_approved_on_the_activate_page(live_server, login_process, nno_home, nno):
    password = "device-flow-password-1"
    sign_up(live_server, "dev@example.com", password)
    user_code = login_process.wait_for_code()
    assert f"Open this URL in your browser: {live_server.url}/api/v1/iam/activate" in login_process.seen

    assert "Device approved" in browser_decides(live_server, "dev@example.com", password, user_code, "approve")
    code, out, err = login_process.finish()
    assert code == 0, (out, err)
    assert "Waiting for authentication..." in out.splitlines()
    assert out.splitlines()[-1] == "✔ Authenticated as dev@example.com"
    assert "Traceback" not in err

    assert stat.S_IMODE(nno_home.stat().st_mode) == 0o700
    path = nno_home / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["email"] == "dev@example.com" and stored["apiUrl"] == live_server.url
    assert stored["token"] and stored["expiresAt"] > 0

    who = nno("whoami", "--json")
    assert who.exit_code == 0, who.output
    assert json.loads(who.stdout)["email"] == "dev@example.com"


def test_device_login_denied_stops_with_a_clear_message(live_server, login_process, nno_home):
    password = "device-flow-password-2"
    sign_up(live_server, "deny@example.com", password)
    user_code = login_process.wait_for_code()
    assert "denied" in browser_decides(live_server, "deny@example.com", password, user_code, "deny")
    code, out, err = login_process.finish()
    assert code == 4, (out, err)
    assert err.splitlines()[0] == "error: login denied: the code was rejected on the activation page"
    assert "nno login" in err and "Traceback" not in err
    assert not (nno_home / "credentials.json").exists()


def test_device_login_expires_when_nobody_approves(live_server, nno_home, monkeypatch):
    monkeypatch.setattr("nno.iam.device.DEVICE_CODE_TTL_S", 1)  # IAM reads it when it issues a code
    process = LoginProcess(live_server, nno_home)
    try:
        process.wait_for_code()
        code, out, err = process.finish()
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
    assert code == 4, (out, err)
    assert err.splitlines()[0] == "error: the login code expired before it was approved"
    assert "nno login" in err and "Traceback" not in err
    assert not (nno_home / "credentials.json").exists()
