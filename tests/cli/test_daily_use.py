"""Issue #16: the CLI for daily use (details in errors, slugs, a chosen platform, where things are,
confirmations, token logins, dev mode, help, completion, doctor, open)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nno.cli.main import app
from tests.cli.conftest import (
    SERVICE_KEY,
    assert_clean_failure,
    login_new_user,
    onboard,
    parse_json,
)

OPERATOR = {"NNO_API_TOKEN": SERVICE_KEY}


def ensure_active(server, platform_id: str) -> None:
    """Active, whether the embedded worker's provisioning got there first or not."""
    import time

    from tests.cli.conftest import make_active

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = server.http.get(f"/api/v1/platforms/{platform_id}", headers=server.service()).json()["status"]
        if status == "active":
            return
        if status == "pending":
            try:
                make_active(server, platform_id)
                return
            except AssertionError:  # provisioning moved it meanwhile
                pass
        time.sleep(0.1)
    raise AssertionError(f"platform {platform_id} never became active")
SHARED_SETTINGS = {"status_cache_ttl_s": 0, "auth_cache_ttl_s": 0}


def test_a_validation_error_names_the_field_and_the_rule(live_server, nno):
    login_new_user(live_server, nno, "fields@example.com")
    platform_id = onboard(nno, "Fields", "fields")["platformId"]
    result = nno("tenant", "create", "Bad", "--slug", "Not A Slug!", "-p", platform_id)
    message = assert_clean_failure(result, exit_code=1)
    assert "VALIDATION_ERROR" in message
    assert "\n  slug: " in message  # the field, then the server's rule for it


def test_slugs_work_wherever_an_id_does_and_unknown_fails_the_same_everywhere(live_server, nno):
    login_new_user(live_server, nno, "slugs@example.com")
    platform_id = onboard(nno, "Slug Co", "slug-co")["platformId"]
    assert parse_json(nno("platform", "show", "slug-co", "--json"))["id"] == platform_id
    assert {t["platformId"] for t in parse_json(nno("tenant", "list", "-p", "slug-co", "--json"))["data"]} == {
        platform_id}
    messages = {
        assert_clean_failure(nno(*args), exit_code=1).splitlines()[0].split(" (")[0]
        for args in (("platform", "show", "no-such-co"), ("tenant", "list", "-p", "no-such-co"),
                     ("audit", "-p", "no-such-co"), ("apikey", "list", "-p", "no-such-co"),
                     ("job", "list", "-p", "no-such-co"), ("platform", "suspend", "no-such-co", "--yes"))
    }
    assert messages == {"error: platform 'no-such-co' not found"}


def test_a_chosen_platform_is_the_default_until_it_is_gone(live_server, nno):
    login_new_user(live_server, nno, "chooser@example.com")
    # Growth: a starter owner may hold one platform only (Billing's tier limits).
    first = parse_json(nno("platform", "create", "First Co", "--slug", "first-co", "--tier", "growth",
                           "--no-wait", "--json"))["onboarding"]["platformId"]
    current = nno("platform", "current")
    assert_clean_failure(current, exit_code=2)
    assert "nno platform use" in current.stderr

    used = nno("platform", "use", "first-co")
    assert used.exit_code == 0 and f"Now using platform first-co ({first})" in used.stdout
    assert parse_json(nno("platform", "current", "--json"))["id"] == first
    second = parse_json(nno("platform", "create", "Second Co", "--slug", "second-co", "--tier", "growth",
                            "--no-wait", "--json"))["onboarding"]["platformId"]
    assert parse_json(nno("platform", "current", "--json"))["id"] == first  # create changes nothing
    assert {t["platformId"] for t in parse_json(nno("tenant", "list", "--json"))["data"]} == {first}

    ensure_active(live_server, first)
    assert nno("platform", "cancel", "first-co", "--yes", env=OPERATOR).exit_code == 0
    deleted = nno("platform", "delete", "first-co", "--yes", env=OPERATOR)
    assert deleted.exit_code == 0, deleted.output
    stale = nno("tenant", "list")
    message = assert_clean_failure(stale, exit_code=2)
    assert "your chosen platform first-co is gone" in message and "--platform" in message
    assert parse_json(nno("tenant", "list", "-p", "second-co", "--json"))["data"]
    refused = nno("platform", "use", "first-co")
    assert "cannot be chosen" in assert_clean_failure(refused, exit_code=2)
    assert second


def test_suspend_cancel_and_delete_ask_first(live_server, nno):
    login_new_user(live_server, nno, "asker@example.com")
    platform_id = onboard(nno, "Ask Co", "ask-co")["platformId"]
    ensure_active(live_server, platform_id)
    for verb in ("suspend", "cancel", "delete"):
        answered_no = nno("platform", verb, "ask-co", env=OPERATOR, input="n\n")
        assert "ask-co" in answered_no.stdout and "[y/N]" in answered_no.stdout
        assert "nothing changed" in assert_clean_failure(answered_no, exit_code=1)
        assert parse_json(nno("platform", "show", "ask-co", "--json"))["status"] == "active"
    yes = nno("platform", "suspend", "ask-co", env=OPERATOR, input="y\n")
    assert yes.exit_code == 0 and "suspended (status: suspended)" in yes.stdout


def test_forbidden_exits_4_with_a_hint_that_fits_the_owner(live_server, nno):
    login_new_user(live_server, nno, "owner403@example.com")
    platform_id = onboard(nno, "Own Co", "own-co")["platformId"]
    ensure_active(live_server, platform_id)
    result = nno("platform", "suspend", "own-co", "--yes")
    message = assert_clean_failure(result, exit_code=4)
    assert "You own own-co, but only an NNO operator may suspend a platform." in message
    assert "Ask a platform admin" not in message


def test_tables_are_plain_text_in_a_pipe(live_server, nno):
    login_new_user(live_server, nno, "pipes@example.com")
    onboard(nno, "Pipe Co", "pipe-co")
    listed = nno("platform", "list")
    assert listed.exit_code == 0
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["ID", "NAME", "SLUG", "STATUS", "TIER", "CREATED"]
    assert "pipe-co" in row.split()
    assert not set("│┃━─┏┡└") & set(listed.stdout)


@pytest.mark.parametrize("server_overrides", [{"auth_api_key": None}])
def test_dev_mode_is_said_once_per_command(live_server, nno):
    result = nno("platform", "list")
    assert result.exit_code == 0
    assert result.stderr.count("runs without authentication") == 1
    assert "everyone who can reach it can do everything" in result.stderr


def test_a_secured_server_says_nothing_about_dev_mode(live_server, nno):
    login_new_user(live_server, nno, "secured@example.com")
    assert "without authentication" not in nno("platform", "list").stderr


def test_doctor_checks_server_login_and_services(live_server, nno):
    login_new_user(live_server, nno, "doctor@example.com")
    result = nno("doctor", "--json")
    report = parse_json(result)
    by_name = {c["check"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert by_name["server"]["ok"] and by_name["signed in"]["detail"].startswith("doctor@example.com")
    for service in ("iam", "registry", "provisioning"):
        assert by_name[f"service {service}"]["detail"] == "ok"
    down = nno("doctor", api_url="http://127.0.0.1:9")
    assert down.exit_code == 3 and "✘ server" in down.stdout


def test_open_prints_the_console_of_a_platform(live_server, nno):
    login_new_user(live_server, nno, "opener@example.com")
    onboard(nno, "Open Co", "open-co")
    pending = nno("open", "open-co", "--print")
    # Before provisioning registers its DNS names there is no console to open; after, its address.
    if pending.exit_code == 0:
        assert pending.stdout.strip().startswith("http://console.app.default.")
    else:
        assert "has no console yet" in assert_clean_failure(pending, exit_code=1)
    assert nno("open", "--print").stdout.strip() == live_server.url + "/"


def _all_commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _all_commands(sub, (*path, name))


def test_help_uses_real_placeholders_and_whole_summaries():
    import typer

    runner = CliRunner()
    root = typer.main.get_command(app)
    for path, command in _all_commands(root):
        text = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"}).stdout
        assert "<str>" not in text and "<list[" not in text and "<int" not in text, (path, text)
        assert "{" not in text.split("\n", 1)[0], (path, text)
        for sub in getattr(command, "commands", {}).values():
            # Even at click's narrowest limit, the summary is the whole first paragraph, never cut.
            if sub.help:
                assert sub.get_short_help_str(limit=20) == " ".join(sub.help.split("\n\n")[0].split()), path


def test_completion_scripts_and_live_completion():
    runner = CliRunner()
    script = runner.invoke(app, ["completion", "bash"])
    assert script.exit_code == 0 and "_NNO_COMPLETE=complete_bash" in script.stdout
    assert runner.invoke(app, ["completion", "tcsh"]).exit_code == 2
    env = {**os.environ, "_NNO_COMPLETE": "complete_bash", "COMP_WORDS": "nno plat", "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-m", "nno"], env=env, capture_output=True, text=True, timeout=60)
    assert "platform" in done.stdout, done.stdout + done.stderr


def test_mail_lists_and_shows_the_local_outbox(live_server, nno):
    """`nno mail` reads the development outbox (operators): here a magic link just asked for."""
    asked = live_server.http.post("/api/v1/iam/api/auth/sign-in/magic-link", json={"email": "mailme@example.com"})
    assert asked.status_code == 200, asked.text
    listed = nno("mail", "list", "--to", "mailme@example.com", env=OPERATOR)
    assert listed.exit_code == 0 and "mailme@example.com" in listed.stdout, listed.output
    mail_id = parse_json(nno("mail", "list", "--to", "mailme@example.com", "--json", env=OPERATOR))["data"][0]["id"]
    shown = nno("mail", "show", mail_id, env=OPERATOR)
    assert shown.exit_code == 0 and "To: mailme@example.com" in shown.stdout and "http" in shown.stdout
    assert "not found" in assert_clean_failure(nno("mail", "show", "nosuchmail0", env=OPERATOR), exit_code=1)
    # Not an operator: refused, and the exit code says so.
    login_new_user(live_server, nno, "nosy@example.com")
    assert_clean_failure(nno("mail", "list"), exit_code=4)


def test_billing_and_stacks_take_a_slug(live_server, nno):
    login_new_user(live_server, nno, "slugbill@example.com")
    platform_id = onboard(nno, "Slug Bill", "slug-bill")["platformId"]
    ensure_active(live_server, platform_id)
    assert parse_json(nno("billing", "plan", "-p", "slug-bill", "--json"))["plans"]
    assert platform_id in nno("billing", "plan", "-p", "slug-bill").stdout  # the slug became the id
    stacks = nno("stack", "list", "-p", "slug-bill", "--json")
    assert stacks.exit_code == 0, stacks.output
