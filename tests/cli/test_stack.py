"""`nno stack list|activate|upgrade|deactivate` against a live server (local cloud, test features)."""

from __future__ import annotations

import json

from tests.cli.conftest import SERVICE_KEY, assert_clean_failure, login_new_user, make_active, onboard, parse_json

OPERATOR = {"NNO_API_TOKEN": SERVICE_KEY}
FAST = ("--poll-interval", "0.05", "--timeout", "120")
SHARED_SETTINGS = {"auth_cache_ttl_s": 0}


def _catalogue(server):
    h = server.service()
    resp = server.http.post("/api/v1/stacks", headers=h,
                            json={"name": "cli-suite", "displayName": "Suite", "description": "CRM, analytics"})
    assert resp.status_code in (201, 409), resp.text
    for version, features in (("1.0.0", ["crm", "analytics"]), ("1.1.0", ["crm", "billing"])):
        server.http.post("/api/v1/stacks/cli-suite/versions", headers=h, json={
            "version": version, "definition": {"resources": {"d1": True}, "features": [{"id": f} for f in features]}})


def test_activate_upgrade_and_deactivate_a_stack(live_server, nno, tmp_path):
    _catalogue(live_server)
    login_new_user(live_server, nno, "stacker@example.com")
    session = onboard(nno, "Stack Co", "stack-co")
    pid = session["platformId"]
    make_active(live_server, pid)
    result = nno("stack", "activate", "cli-suite", "--version", "1.0.0", "--platform", pid, *FAST)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.strip() == "✔ deploy_feature_workers" for line in lines), result.stdout
    assert lines[-1].startswith("✔ Stack ") and lines[-1].endswith(" is active")
    stacks = parse_json(nno("stack", "list", "--platform", pid, "--json"))["data"]
    stack = next(s for s in stacks if s["name"] == "cli-suite")
    assert (stack["status"], stack["templateId"], stack["templateVersion"]) == ("active", "cli-suite", "1.0.0")
    human = nno("stack", "list", "--platform", pid)
    assert human.exit_code == 0 and "cli-suite" in human.stdout and "default" in human.stdout

    upgraded = parse_json(nno("stack", "upgrade", stack["id"], "--platform", pid, "--json", *FAST))
    assert upgraded["job"]["status"] == "COMPLETED" and upgraded["stack"]["templateVersion"] == "1.1.0"
    again = nno("stack", "upgrade", stack["id"], "--platform", pid, *FAST)
    assert "NOT_NEWER" in assert_clean_failure(again, exit_code=1)

    done = parse_json(nno("stack", "deactivate", stack["id"], "--platform", pid, "--delete-data", "--json", *FAST))
    assert done["job"]["status"] == "COMPLETED" and done["job"]["type"] == "DEACTIVATE_STACK"
    stacks = parse_json(nno("stack", "list", "--platform", pid, "--json"))["data"]
    assert next(s for s in stacks if s["id"] == stack["id"])["status"] == "deactivated"

    # Path B: a definition file of the platform's own.
    definition = tmp_path / "local.json"
    definition.write_text(json.dumps({"name": "mine", "resources": {"kv": True}, "features": [{"id": "late"}]}))
    local = parse_json(nno("stack", "activate", "-f", str(definition), "--platform", pid, "--json", *FAST))
    assert local["stack"]["name"] == "mine" and local["stack"]["status"] == "active"
    assert local["job"]["payload"]["definition"]["features"][0]["id"] == "late"


def test_refusals_are_clean(live_server, nno):
    _catalogue(live_server)
    login_new_user(live_server, nno, "refused@example.com")
    pid = onboard(nno, "Refused Co", "refused-co")["platformId"]
    make_active(live_server, pid)
    unknown = nno("stack", "activate", "no-such-template", "--platform", pid, *FAST)
    assert "no-such-template' not found" in assert_clean_failure(unknown, exit_code=1)
    neither = nno("stack", "activate", "--platform", pid)
    assert_clean_failure(neither, exit_code=2)
    # Someone else's platform: refused, nothing created there.
    login_new_user(live_server, nno, "intruder@example.com")
    intruder = nno("stack", "activate", "cli-suite", "--platform", pid, *FAST)
    assert_clean_failure(intruder, exit_code=1)
    stacks = live_server.http.get(f"/api/v1/platforms/{pid}/stacks", headers=live_server.service()).json()["data"]
    assert [s["name"] for s in stacks] == ["default"]
