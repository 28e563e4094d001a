"""`nno platform`, `nno tenant`, `nno audit` against a live server."""

from __future__ import annotations

import pytest

from tests.cli.conftest import (
    SERVICE_KEY,
    assert_clean_failure,
    login_new_user,
    make_active,
    onboard,
    parse_json,
)

OPERATOR = {"NNO_API_TOKEN": SERVICE_KEY}
# No gateway caches: a suspension, and a user's new platform, show in the next request.
SHARED_SETTINGS = {"status_cache_ttl_s": 0, "auth_cache_ttl_s": 0}


def test_create_without_waiting_then_list_and_show(live_server, nno):
    signed = login_new_user(live_server, nno, "owner@example.com")
    session = onboard(nno, "Acme Corp", "acme")
    platform_id = session["platformId"]
    assert session["slug"] == "acme" and session["userId"] == signed["user"]["id"]

    listed = parse_json(nno("platform", "list", "--json"))
    assert [p["id"] for p in listed["data"]] == [platform_id]
    assert listed["pagination"]["hasMore"] is False

    shown = parse_json(nno("platform", "show", platform_id, "--json"))
    assert shown["slug"] == "acme" and shown["ownerUserId"] == signed["user"]["id"]
    assert shown["status"] in ("pending", "provisioning", "active")

    human = nno("platform", "list")
    assert human.exit_code == 0
    assert platform_id in human.stdout and "acme" in human.stdout and "STATUS" in human.stdout
    detail = nno("platform", "show", platform_id)
    assert "Acme Corp" in detail.stdout and "starter" in detail.stdout


def test_create_refuses_a_taken_slug_with_the_envelope_message(live_server, nno):
    login_new_user(live_server, nno, "twice@example.com")
    onboard(nno, "First", "taken")
    result = nno("platform", "create", "Second", "--slug", "taken", "--no-wait")
    message = assert_clean_failure(result, exit_code=1)
    assert message.startswith("error: ") and "request id" in message


def test_bad_tier_is_a_usage_error(live_server, nno):
    result = nno("platform", "create", "X", "--tier", "platinum")
    message = assert_clean_failure(result, exit_code=2)
    assert "platinum" in message and "starter" in message


def test_show_unknown_platform_is_404_with_request_id(live_server, nno):
    login_new_user(live_server, nno, "nobody@example.com")
    message = assert_clean_failure(nno("platform", "show", "zzzzzzzzzz"), exit_code=1)
    assert "NOT_FOUND" in message or "not found" in message.lower()
    assert "request id" in message


def test_suspend_gives_451_to_the_platform_users_until_restored(live_server, nno):
    login_new_user(live_server, nno, "suspended@example.com")
    platform_id = onboard(nno, "Soon Suspended", "soon-suspended")["platformId"]
    make_active(live_server, platform_id)

    # Only an operator (here the service key) suspends; the reason goes to the audit log.
    done = nno("platform", "suspend", platform_id, "--reason", "unpaid invoice", "--yes", env=OPERATOR)
    assert done.exit_code == 0, done.output
    assert f"Platform soon-suspended ({platform_id}) suspended (status: suspended)" in done.stdout

    blocked = nno("platform", "show", platform_id)
    message = assert_clean_failure(blocked, exit_code=1)
    first, hint = message.strip().splitlines()
    assert first.startswith("error: This platform has been suspended. (PLATFORM_SUSPENDED, request id ")
    assert "nno platform restore" in hint

    again = nno("platform", "suspend", platform_id, "--yes", env=OPERATOR, api_url=None)
    assert again.exit_code in (0, 1)  # idempotent or INVALID_TRANSITION, never a traceback
    assert "Traceback" not in again.output

    restored = parse_json(nno("platform", "restore", platform_id, "--json", env=OPERATOR))
    assert restored["status"] == "active" and restored["suspendedAt"] is None
    assert parse_json(nno("platform", "show", platform_id, "--json"))["status"] == "active"

    cancelled = parse_json(nno("platform", "cancel", platform_id, "--reason", "moving on", "--json", "--yes"))
    assert cancelled["status"] == "pending_cancellation"


def test_invalid_transition_is_one_line_with_the_code(live_server, nno):
    login_new_user(live_server, nno, "pending@example.com")
    platform_id = onboard(nno, "Still Pending", "still-pending")["platformId"]
    status = parse_json(nno("platform", "show", platform_id, "--json"))["status"]
    if status == "active":
        pytest.skip("provisioning finished before the check")
    message = assert_clean_failure(nno("platform", "restore", platform_id, env=OPERATOR), exit_code=1)
    assert "INVALID_TRANSITION" in message and "request id" in message


def test_tenants_create_and_list(live_server, nno):
    login_new_user(live_server, nno, "tenants@example.com")
    platform_id = onboard(nno, "With Tenants", "with-tenants")["platformId"]

    created = parse_json(nno("tenant", "create", "Team Alpha", "--platform", platform_id, "--json"))
    assert created["slug"] == "team-alpha" and created["platformId"] == platform_id
    human = nno("tenant", "create", "Team Beta", "--slug", "beta", "--platform", platform_id)
    assert human.exit_code == 0 and "(beta) created" in human.stdout

    listed = parse_json(nno("tenant", "list", "--platform", platform_id, "--json"))
    slugs = {t["slug"] for t in listed["data"]}
    assert {"team-alpha", "beta"} <= slugs
    table = nno("tenant", "list", "-p", platform_id)
    assert "team-alpha" in table.stdout and "beta" in table.stdout

    dup = nno("tenant", "create", "Again", "--slug", "beta", "--platform", platform_id)
    assert "request id" in assert_clean_failure(dup, exit_code=1)


def test_platform_comes_from_the_login_when_not_given(live_server, nno):
    signed = login_new_user(live_server, nno, "default@example.com")
    platform_id = onboard(nno, "Default One", "default-one")["platformId"]
    # Logging in again now records the platform the user administers.
    assert nno("login", "--token", signed["token"]).exit_code == 0
    assert parse_json(nno("whoami", "--json"))["platformId"] == platform_id
    listed = parse_json(nno("tenant", "list", "--json"))
    assert all(t["platformId"] == platform_id for t in listed["data"])


def test_missing_platform_is_a_usage_error(live_server, nno):
    login_new_user(live_server, nno, "noplat@example.com")
    message = assert_clean_failure(nno("tenant", "list"), exit_code=2)
    assert "--platform" in message


def test_audit_shows_the_platform_history(live_server, nno):
    login_new_user(live_server, nno, "audited@example.com")
    platform_id = onboard(nno, "Audited", "audited")["platformId"]
    nno("tenant", "create", "Ops", "--platform", platform_id)
    page = parse_json(nno("audit", "--platform", platform_id, "--json"))
    actions = [entry["action"] for entry in page["data"]]
    assert actions, page
    assert any("tenant" in a or "entity" in a for a in actions)
    human = nno("audit", "-p", platform_id, "--limit", "2")
    assert human.exit_code == 0 and "ACTION" in human.stdout


def test_operators_see_every_platform_and_sub_tenants_nest(live_server, nno):
    login_new_user(live_server, nno, "first-owner@example.com")
    first = onboard(nno, "First Owner", "first-owner")["platformId"]
    login_new_user(live_server, nno, "second-owner@example.com")
    second = onboard(nno, "Second Owner", "second-owner")["platformId"]
    mine = {p["id"] for p in parse_json(nno("platform", "list", "--json"))["data"]}
    assert second in mine and first not in mine
    listed = parse_json(nno("platform", "list", "--limit", "100", "--json", env=OPERATOR))
    everything = {p["id"] for p in listed["data"]}
    assert {first, second} <= everything

    parent = parse_json(nno("tenant", "create", "Parent", "-p", second, "--json"))
    child = parse_json(nno("tenant", "create", "Child", "-p", second, "--parent", parent["id"], "--json"))
    assert child["parentId"] == parent["id"]


# The local-dev bypass (AUTH_API_KEY unset): no login needed to read and operate.
@pytest.mark.parametrize("server_overrides", [{"auth_api_key": None}])
def test_dev_bypass_needs_no_login(live_server, nno, nno_home):
    login_new_user(live_server, nno, "dev-owner@example.com")
    platform_id = onboard(nno, "Dev Mode", "dev-mode")["platformId"]
    assert nno("logout").exit_code == 0
    listed = parse_json(nno("platform", "list", "--json"))
    assert platform_id in {p["id"] for p in listed["data"]}
    assert parse_json(nno("tenant", "list", "-p", platform_id, "--json"))["data"]
