"""`nno feature` against a live server: list, show, activate and deactivate with the job-following
display and --json, validate (exit 1 on an error rule), init."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import assert_clean_failure, login_new_user, parse_json


def test_activate_list_deactivate_on_a_platform(live_server, nno):
    login_new_user(live_server, nno, "feat@example.com")
    created = parse_json(nno("platform", "create", "Feat Co", "--slug", "feat-co", "--json"))
    pid = created["platform"]["id"]
    assert created["platform"]["status"] == "active"

    listed = parse_json(nno("feature", "list", "--json"))
    by_id = {f["id"]: f for f in listed["data"]}
    assert by_id["tasks"]["valid"] is True and by_id["tasks"]["distribution"] == "nno-feature-tasks"
    assert by_id["broken"]["valid"] is False

    assert nno("platform", "use", "feat-co").exit_code == 0
    human = nno("feature", "activate", "tasks")  # the chosen platform
    assert human.exit_code == 0, human.output
    assert "run_feature_migrations" in human.stdout and f"Feature tasks is active on {pid}" in human.stdout
    active = parse_json(nno("feature", "list", "--platform", pid, "--json"))
    assert next(f for f in active["data"] if f["id"] == "tasks")["active"] == "1.0.0 (prod)"
    table = nno("feature", "list", "--platform", pid)
    assert "ACTIVE" in table.stdout and "1.0.0 (prod)" in table.stdout

    shown = parse_json(nno("feature", "show", "tasks", "--json"))
    assert [p["key"] for p in shown["permissions"]] == ["tasks:read", "tasks:write", "tasks:manage"]

    job = parse_json(nno("feature", "deactivate", "tasks", "--platform", pid, "--delete-data", "--json"))
    assert job["status"] == "COMPLETED" and job["type"] == "DEACTIVATE_FEATURE"
    assert job["payload"]["deleteData"] is True


def test_refusals_are_clean_errors(live_server, nno):
    login_new_user(live_server, nno, "refused@example.com")
    pid = parse_json(nno("platform", "create", "Refused", "--slug", "refused", "--json"))["platform"]["id"]
    message = assert_clean_failure(nno("feature", "activate", "nope", "--platform", pid), exit_code=1)
    assert "nope" in message
    message = assert_clean_failure(nno("feature", "activate", "broken", "--platform", pid), exit_code=1)
    assert "validation rule" in message
    assert_clean_failure(nno("feature", "activate", "tasks", "--env", "qa"), exit_code=2)


def test_init_and_validate(nno, tmp_path: Path):
    target = tmp_path / "team-notes"
    made = parse_json(nno("feature", "init", "team-notes", "--dir", str(target), "--json"))
    assert made["distribution"] == "feature-team-notes" and "pyproject.toml" in made["files"]
    ok = parse_json(nno("feature", "validate", str(target), "--json"))
    assert ok["valid"] is True
    # Break V06 and V04: validate reports both by rule and field, and exits 1.
    init = next(target.glob("src/*/__init__.py"))
    init.write_text(init.read_text().replace('key="team-notes:write"', 'key="TeamNotes_Write"')
                    .replace('version="0.1.0"', 'version="one"'))
    bad = nno("feature", "validate", str(target), "--json")
    assert bad.exit_code == 1
    findings = {(f["rule"], f["field"]) for f in json.loads(bad.stdout)["data"][0]["findings"]}
    assert {("V04", "version"), ("V06", "permissions[1].key")} <= findings
    assert_clean_failure(nno("feature", "init", "Bad_Name", "--dir", str(tmp_path / "x")), exit_code=2)
    assert_clean_failure(nno("feature", "validate", str(tmp_path / "nothing-here")), exit_code=2)
    assert nno("feature", "validate", "tasks").exit_code == 0
