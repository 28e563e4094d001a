"""`nno marketplace list|show|publish|deprecate` against a live server."""

from __future__ import annotations

import json

from nno.sdk.stack import AvailableFeature
from nno.stacks.service import INSTALLED_FEATURES_KEY
from tests.cli.conftest import SERVICE_KEY, assert_clean_failure, login_new_user, parse_json

OPERATOR = {"NNO_API_TOKEN": SERVICE_KEY}


def test_list_shows_the_catalogue(live_server, nno):
    login_new_user(live_server, nno, "browse@example.com")
    data = parse_json(nno("marketplace", "list", "--json"))
    assert {t["name"] for t in data["data"]} >= {"saas-starter", "team-workspace"}
    human = nno("marketplace", "list")
    assert human.exit_code == 0, human.output
    assert "saas-starter" in human.stdout and "SaaS Starter Stack" in human.stdout and "1.0.0" in human.stdout
    only = parse_json(nno("marketplace", "list", "--domain", "saas", "--json"))
    assert [t["name"] for t in only["data"]] == ["saas-starter"]


def test_show_lists_features_and_versions(live_server, nno):
    login_new_user(live_server, nno, "show@example.com")
    shown = parse_json(nno("marketplace", "show", "saas-starter", "--json"))
    assert shown["template"]["name"] == "saas-starter"
    assert [f["id"] for f in shown["version"]["definition"]["features"]] == ["settings", "members", "tasks"]
    assert [v["version"] for v in shown["versions"]] == ["1.0.0"]
    human = nno("marketplace", "show", "saas-starter")
    assert human.exit_code == 0, human.output
    for text in ("SaaS Starter Stack", "settings_", "members", "tasks/", "Versions", "shared resources  d1"):
        assert text in human.stdout, text
    missing = nno("marketplace", "show", "no-such-template")
    assert "NOT_FOUND" in assert_clean_failure(missing, exit_code=1)


def test_operators_publish_and_deprecate(live_server, nno, tmp_path):
    live_server.core.context("stacks").extras[INSTALLED_FEATURES_KEY] = lambda: {
        "tasks": AvailableFeature("tasks", "1.0.0", frozenset({"d1"}))}
    created = live_server.http.post("/api/v1/stacks", headers=live_server.service(),
                                    json={"name": "cli-tasks", "displayName": "Tasks", "description": "Tasks only"})
    assert created.status_code == 201, created.text
    definition = tmp_path / "def.json"
    definition.write_text(json.dumps({"resources": {"d1": True}, "features": [{"id": "tasks"}]}))
    published = parse_json(nno("marketplace", "publish", "cli-tasks", "1.0.0", "-f", str(definition),
                               "--changelog", "first", "--json", env=OPERATOR))
    assert published["version"] == "1.0.0" and published["changelog"] == "first"
    human = nno("marketplace", "publish", "cli-tasks", "1.1.0", "-f", str(definition), env=OPERATOR)
    assert human.exit_code == 0 and "Published cli-tasks 1.1.0" in human.stdout
    # A definition that does not fit the installed features names the rule and the field.
    definition.write_text(json.dumps({"resources": {"kv": True}, "features": [{"id": "tasks"}, {"id": "nope"}]}))
    refused = assert_clean_failure(nno("marketplace", "publish", "cli-tasks", "1.2.0", "-f", str(definition),
                                       env=OPERATOR), exit_code=1)
    assert "S04 features[1].id" in refused and "S06 resources" in refused and "INVALID_DEFINITION" in refused
    deprecated = nno("marketplace", "deprecate", "cli-tasks", "1.1.0", env=OPERATOR)
    assert deprecated.exit_code == 0 and "latest is now 1.0.0" in deprecated.stdout
    # A platform admin (any signed-in user) may not publish.
    login_new_user(live_server, nno, "notop@example.com")
    definition.write_text(json.dumps({"resources": {"d1": True}, "features": [{"id": "tasks"}]}))
    forbidden = nno("marketplace", "publish", "cli-tasks", "2.0.0", "-f", str(definition))
    assert "FORBIDDEN" in assert_clean_failure(forbidden, exit_code=4)
    versions = parse_json(nno("marketplace", "show", "cli-tasks", "--json"))["versions"]
    assert sorted(v["version"] for v in versions) == ["1.0.0", "1.1.0"]
