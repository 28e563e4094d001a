"""`nno admin bootstrap`: the first operator of a new installation.

The module's server starts as a new installation; the first test bootstraps it, the others check
the client side (prompting, missing key, server refusals) against it.
"""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import SERVICE_KEY, assert_clean_failure, login_new_user, parse_json

PASSWORD = "operator-password-123"


def test_bootstrap_creates_the_first_operator_and_can_sign_in(live_server, nno, nno_home):
    status = live_server.http.get("/api/v1/iam/api/nno/bootstrap", headers=live_server.service())
    assert status.json() == {"bootstrapped": False}
    result = nno("admin", "bootstrap", "--email", "op@example.com", "--password-stdin", "--login",
                 env={"AUTH_API_KEY": SERVICE_KEY}, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("✔ Operator op@example.com created (")
    assert "nno-operators" in result.stdout

    who = parse_json(nno("whoami", "--json"))
    assert who["email"] == "op@example.com" and who["role"] == "nno-operator"

    # The operator signs in with the password too.
    signed = live_server.http.post("/api/v1/iam/api/auth/sign-in/email",
                                   json={"email": "op@example.com", "password": PASSWORD})
    assert signed.status_code == 200, signed.text

    again = nno("admin", "bootstrap", "--email", "op2@example.com", "--password-stdin",
                env={"AUTH_API_KEY": SERVICE_KEY}, input=PASSWORD + "\n")
    message = assert_clean_failure(again, exit_code=1)
    assert "ALREADY_BOOTSTRAPPED" in message and "request id" in message


def test_bootstrap_prompts_for_the_password_twice(live_server, nno):
    result = nno("admin", "bootstrap", "--email", "prompted@example.com", "--service-key", SERVICE_KEY, "--json",
                 input=f"{PASSWORD}\n{PASSWORD}\n")
    assert "Password:" in result.output and "Repeat for confirmation:" in result.output
    if result.exit_code == 0:  # this test ran alone, on a new installation
        answer = json.loads(result.stdout[result.stdout.index("{"):])
        assert answer["user"]["email"] == "prompted@example.com" and answer["token"]
    else:
        assert "ALREADY_BOOTSTRAPPED" in assert_clean_failure(result, exit_code=1)


def test_bootstrap_needs_the_service_key(live_server, nno):
    missing = nno("admin", "bootstrap", "--email", "x@example.com", "--password-stdin", input=PASSWORD + "\n")
    message = assert_clean_failure(missing, exit_code=4)
    assert "--service-key" in message and "--offline" in message
    wrong = nno("admin", "bootstrap", "--email", "x@example.com", "--password-stdin",
                "--service-key", "not-the-key", input=PASSWORD + "\n")
    message = assert_clean_failure(wrong)
    assert "request id" in message and "ALREADY_BOOTSTRAPPED" not in message


def test_bootstrap_weak_password_is_refused_with_the_server_message(live_server, nno):
    result = nno("admin", "bootstrap", "--email", "weak@example.com", "--password-stdin",
                 env={"AUTH_API_KEY": SERVICE_KEY}, input="abc\n")
    message = assert_clean_failure(result, exit_code=1)
    assert message.startswith("error: ") and "request id" in message


@pytest.mark.parametrize("server_overrides", [{"auth_api_key": None}])
def test_bootstrap_in_local_dev_mode_needs_no_key(live_server, nno):
    """`make run` has no AUTH_API_KEY, so there is no key to give: the bypass lets this machine in,
    even when the terminal is signed in as an ordinary user."""
    login_new_user(live_server, nno, "ada@example.com")
    result = nno("admin", "bootstrap", "--email", "op@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("✔ Operator op@example.com created (")
    signed = live_server.http.post("/api/v1/iam/api/auth/sign-in/email",
                                   json={"email": "op@example.com", "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    session = live_server.http.get("/api/v1/iam/api/nno/session",
                                   headers={"Authorization": f"Bearer {signed.json()['token']}"})
    assert session.json()["role"] == "nno-operator", session.text


@pytest.mark.parametrize("server_overrides", [{"auth_api_key": SERVICE_KEY}])
def test_bootstrap_offline_writes_the_operator_into_the_servers_data(live_server, nno):
    s = live_server.settings
    env = {"NNO_DATA_DIR": str(s.data_dir), "NNO_DATABASE_URL": s.database_url, "AUTH_API_KEY": None}
    result = nno("admin", "bootstrap", "--offline", "--email", "off@example.com", "--password-stdin", "--login",
                 env=env, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    who = parse_json(nno("whoami", "--json"))  # the session it made works on the running server
    assert who["email"] == "off@example.com" and who["role"] == "nno-operator"
    again = nno("admin", "bootstrap", "--offline", "--email", "off2@example.com", "--password-stdin",
                env=env, input=PASSWORD + "\n")
    assert "ALREADY_BOOTSTRAPPED" in assert_clean_failure(again, exit_code=1)
    bad = nno("admin", "bootstrap", "--offline", "--email", "not-an-address", "--password-stdin",
              env=env, input=PASSWORD + "\n")
    assert "email" in assert_clean_failure(bad, exit_code=2)
