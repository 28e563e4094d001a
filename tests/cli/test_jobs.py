"""`nno platform create` following its provisioning job, and `nno job list|show|retry`."""

from __future__ import annotations

import pytest

from tests.cli.conftest import SERVICE_KEY, assert_clean_failure, login_new_user, parse_json

OPERATOR = {"NNO_API_TOKEN": SERVICE_KEY}
FAST = ("--poll-interval", "0.05", "--timeout", "120")
# No gateway cache of validated sessions: the new platform shows in the identity at once.
NO_AUTH_CACHE = {"auth_cache_ttl_s": 0}
SHARED_SETTINGS = NO_AUTH_CACHE


def test_create_follows_the_job_until_the_platform_is_active(live_server, nno):
    login_new_user(live_server, nno, "live@example.com")
    result = nno("platform", "create", "Live One", "--slug", "live-one", *FAST)
    assert result.exit_code == 0, result.output
    platform_id = parse_json(nno("platform", "list", "--json"))["data"][0]["id"]
    lines = result.stdout.splitlines()
    assert f"✔ Platform {platform_id} is active" in lines
    # It says where the platform is, and leaves the chosen platform alone.
    port = live_server.url.rsplit(":", 1)[1]
    assert f"Console: http://console.app.default.{platform_id}.nno.localhost:{port}/" in lines
    assert any(line.startswith(f"Auth: http://auth.svc.default.{platform_id}.") for line in lines)
    current = nno("platform", "current")
    assert current.exit_code == 2 and "nno platform use" in current.stderr
    assert any(line.strip().startswith("✔ ") and "auth" in line for line in lines), result.stdout

    shown = parse_json(nno("platform", "show", platform_id, "--json"))
    assert shown["status"] == "active"
    jobs = parse_json(nno("job", "list", "--platform", platform_id, "--json"))
    assert [j["type"] for j in jobs["data"]] == ["PROVISION_PLATFORM"]
    job = parse_json(nno("job", "show", jobs["data"][0]["id"], "--json"))
    assert job["status"] == "COMPLETED"
    assert all(step["status"] in ("completed", "skipped") for step in job["steps"])
    human = nno("job", "show", job["id"])
    assert human.exit_code == 0 and "Steps" in human.stdout and job["steps"][0]["name"] in human.stdout


def test_create_json_reports_onboarding_job_and_platform(live_server, nno):
    login_new_user(live_server, nno, "json@example.com")
    data = parse_json(nno("platform", "create", "Json One", "--slug", "json-one", "--json", *FAST))
    assert data["platform"]["status"] == "active"
    assert data["job"]["status"] == "COMPLETED" and data["job"]["platformId"] == data["platform"]["id"]
    assert data["onboarding"]["platformId"] == data["platform"]["id"]


@pytest.mark.parametrize("server_overrides", [NO_AUTH_CACHE | {"provider": "nosuchprovider", "job_max_attempts": 1}])
def test_failed_provisioning_shows_the_failed_step_and_its_error(live_server, nno):
    login_new_user(live_server, nno, "broken@example.com")
    result = nno("platform", "create", "Broken One", "--slug", "broken-one", *FAST)
    message = assert_clean_failure(result, exit_code=1)
    first, hint = message.strip().splitlines()
    assert first.startswith("error: provisioning job ")
    assert " at step " in first and "nosuchprovider" in first
    assert "nno job show" in hint and "nno job retry" in hint
    assert "✘" in result.stdout  # the progress display marks the failed step

    platform_id = parse_json(nno("platform", "list", "--json"))["data"][0]["id"]
    job = parse_json(nno("job", "list", "--platform", platform_id, "--json"))["data"][0]
    assert job["status"] in ("FAILED", "ROLLING_BACK", "ROLLED_BACK", "ROLLBACK_FAILED")
    failed = [s for s in job["steps"] if s.get("error")]
    assert len(failed) == 1 and f" at step {failed[0]['name']}: " in first

    human = nno("job", "show", job["id"])
    assert human.exit_code == 0 and f"failed step  {failed[0]['name']}: provider" in human.stdout

    retried = nno("job", "retry", job["id"], env=OPERATOR)
    assert retried.exit_code == 0, retried.output
    assert f"Job {job['id']} re-queued" in retried.stdout


def test_job_show_unknown_is_a_clear_404(live_server, nno):
    login_new_user(live_server, nno, "nojob@example.com")
    message = assert_clean_failure(nno("job", "show", "zzzzzzzzzz"), exit_code=1)
    assert "request id" in message


# The default gateway auth cache (10 s): the new platform is not in the caller's identity yet, so the
# job is invisible for a while; the command follows the onboarding session meanwhile.
@pytest.mark.parametrize("server_overrides", [{"auth_cache_ttl_s": 10.0}])
def test_create_succeeds_while_the_gateway_still_caches_the_old_identity(live_server, nno):
    login_new_user(live_server, nno, "cached@example.com")
    result = nno("platform", "create", "Cached One", "--slug", "cached-one", *FAST)
    assert result.exit_code == 0, result.output
    platform_id = parse_json(nno("platform", "list", "--json"))["data"][0]["id"]
    assert f"✔ Platform {platform_id} is active" in result.stdout.splitlines()
    # Creating a platform does not silently change the chosen one.
    assert parse_json(nno("whoami", "--offline", "--json"))["platformId"] is None


def test_create_without_a_provisioning_service_says_so(shared_server, make_settings, tmp_path, cli_env):
    from typer.testing import CliRunner

    from nno.cli.main import app
    from tests.cli.conftest import serve_core, sign_up

    shared_server.stop()
    with serve_core(lambda url: make_settings(public_url=url), tmp_path / "server.log",
                    services=["iam", "registry"]) as server:
        env = cli_env | {"NNO_API_TOKEN": sign_up(server, "noprov@example.com")["token"]}
        result = CliRunner().invoke(app, ["--api-url", server.url, "platform", "create", "No Prov", *FAST], env=env)
    message = assert_clean_failure(result, exit_code=1)
    assert "was created but cannot be provisioned" in message and "not deployed" in message
