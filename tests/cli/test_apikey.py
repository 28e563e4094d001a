"""`nno apikey create|list|revoke`, and using a key for CI (`NNO_API_TOKEN`, `login --token`)."""

from __future__ import annotations

from tests.cli.conftest import assert_clean_failure, login_new_user, onboard, parse_json

# No gateway cache: a revoked key is refused at once.
SHARED_SETTINGS = {"auth_cache_ttl_s": 0}


def test_key_lifecycle_and_use_in_ci(live_server, nno, nno_home):
    login_new_user(live_server, nno, "keys@example.com")
    platform_id = onboard(nno, "Keyed", "keyed")["platformId"]

    created = parse_json(nno("apikey", "create", "--name", "ci", "--platform", platform_id,
                             "--permission", "platform:read", "--permission", "billing:read",
                             "--expires-in-days", "30", "--json"))
    key, key_id = created["key"], created["id"]
    assert key.startswith("nno_") and len(key) >= 36
    assert created["platformId"] == platform_id and created["permissions"] == ["platform:read", "billing:read"]
    assert created["expiresAt"] > created["createdAt"]

    human = nno("apikey", "create", "--name", "deploy", "--platform", platform_id)
    assert human.exit_code == 0 and "Key: nno_" in human.stdout and "not shown again" in human.stdout

    listed = parse_json(nno("apikey", "list", "--platform", platform_id, "--json"))
    assert {k["name"] for k in listed["data"]} == {"ci", "deploy"}
    assert all("key" not in k for k in listed["data"])
    table = nno("apikey", "list", "-p", platform_id)
    assert key_id in table.stdout and key not in table.stdout

    # CI: the key in NNO_API_TOKEN goes out as x-api-key; its permissions hold (nno.kernel.scopes).
    as_key = {"NNO_API_TOKEN": key}
    assert parse_json(nno("platform", "show", platform_id, "--json", env=as_key))["id"] == platform_id
    assert "INSUFFICIENT_SCOPE" in assert_clean_failure(nno("tenant", "list", "-p", platform_id, env=as_key),
                                                        exit_code=4)
    ci_home = {"NNO_HOME": str(nno_home.parent / "ci-home")}
    stored = nno("login", "--token", key, env=ci_home)
    assert stored.exit_code == 0
    assert stored.stdout.strip() == f"✔ Authenticated with API key ci ({key_id}) for platform {platform_id}"
    who = parse_json(nno("whoami", "--json", env=ci_home))
    assert who["role"] == "apikey" and who["verified"] is True
    assert who["keyName"] == "ci" and who["keyId"] == key_id and who["platformId"] == platform_id
    assert who["email"] is None  # no placeholder user
    # Commands then default to the key's platform, from the login and from NNO_API_TOKEN alike.
    assert parse_json(nno("platform", "current", "--json", env=ci_home))["id"] == platform_id
    assert parse_json(nno("platform", "current", "--json", env=as_key))["id"] == platform_id
    offline = nno("whoami", "--offline", env=ci_home)
    assert "API key ci" in offline.stdout and "Last verified with the server at" in offline.stdout

    revoked = nno("apikey", "revoke", key_id)
    assert revoked.exit_code == 0 and f"API key {key_id} revoked" in revoked.stdout
    refused = nno("platform", "show", platform_id, env=as_key)
    message = assert_clean_failure(refused, exit_code=4)
    assert "request id" in message and "nno login" in message

    twice = nno("apikey", "revoke", key_id)
    assert "API_KEY_REVOKED" in assert_clean_failure(twice, exit_code=1)


def test_key_for_a_platform_you_do_not_belong_to_is_refused(live_server, nno):
    login_new_user(live_server, nno, "outsider@example.com")
    message = assert_clean_failure(nno("apikey", "create", "--name", "x", "--platform", "aaaaaaaaaa"))
    assert "request id" in message
