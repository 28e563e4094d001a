"""`nno platform set-icon PLATFORM URL|FILE` against a live server."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.cli.conftest import SERVICE_KEY, assert_clean_failure, login_new_user, onboard, parse_json

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
                       "awAAAABJRU5ErkJggg==")
OPERATOR = {"NNO_API_TOKEN": SERVICE_KEY}


def test_set_icon_from_a_file_or_a_url_and_back_to_the_initials(live_server, nno, tmp_path: Path):
    login_new_user(live_server, nno, "iconic@example.com")
    pid = onboard(nno, "Iconic", "iconic")["platformId"]
    icon = tmp_path / "icon.png"
    icon.write_bytes(PNG)

    made = parse_json(nno("platform", "set-icon", pid, str(icon), "--json", env=OPERATOR))
    assert made["icon"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    url = "https://cdn.example.com/i.png"
    assert parse_json(nno("platform", "set-icon", pid, url, "--json", env=OPERATOR))["icon"] == url

    # Refused locally (not an image) or by the Registry (not https, SVG): nothing changes.
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not a PNG" in assert_clean_failure(nno("platform", "set-icon", pid, str(text), env=OPERATOR),
                                               exit_code=2)
    for bad in ("http://cdn.example.com/i.png", "data:image/svg+xml;base64,PHN2Zy8+"):
        assert "request id" in assert_clean_failure(nno("platform", "set-icon", pid, bad, env=OPERATOR), exit_code=1)
    assert parse_json(nno("platform", "show", pid, "--json", env=OPERATOR))["icon"] == url

    human = nno("platform", "set-icon", pid, "", env=OPERATOR)
    assert human.exit_code == 0 and "initials" in human.stdout, human.output
    assert parse_json(nno("platform", "show", pid, "--json", env=OPERATOR))["icon"] is None
