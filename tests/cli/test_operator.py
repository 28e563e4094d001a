"""`nno operator list|grant|revoke`: operators grant the right to accounts whose address is proven."""

from __future__ import annotations

import re

from tests.cli.conftest import SERVICE_KEY, assert_clean_failure, login_new_user, parse_json, sign_up

PASSWORD = "operator-password-123"


def magic_sign_in(live_server, email: str) -> str:
    """Signs `email` in by the magic link read from the (development) outbox; returns the user id."""
    asked = live_server.http.post("/api/v1/iam/api/auth/sign-in/magic-link", json={"email": email})
    assert asked.status_code == 200, asked.text
    mails = live_server.http.get("/api/v1/iam/api/nno/mail/outbox", params={"to": email},
                                 headers=live_server.service()).json()["data"]
    link = re.search(r"/api/v1/iam/api/auth/magic-link/verify\?token=\S+", mails[0]["body"])
    assert link, mails
    opened = live_server.http.get(link.group(0))
    assert opened.status_code == 200, opened.text
    live_server.http.cookies.clear()
    return str(opened.json()["user"]["id"])


def test_an_operator_grants_and_revokes(live_server, nno, nno_home):
    made = nno("admin", "bootstrap", "--email", "root@example.com", "--password-stdin", "--login",
               env={"AUTH_API_KEY": SERVICE_KEY}, input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    ada = magic_sign_in(live_server, "ada@example.com")
    sign_up(live_server, "bob@example.com")  # a password sign-up: the address is not proven

    granted = nno("operator", "grant", "ada@example.com")
    assert granted.exit_code == 0 and f"ada@example.com ({ada}) is an operator" in granted.stdout
    listed = parse_json(nno("operator", "list", "--json"))
    assert [o["email"] for o in listed["data"]] == ["root@example.com", "ada@example.com"]
    assert "EMAIL_NOT_VERIFIED" in assert_clean_failure(nno("operator", "grant", "bob@example.com"))

    revoked = nno("operator", "revoke", ada)
    assert revoked.exit_code == 0 and f"{ada} is no longer an operator" in revoked.stdout
    assert [o["email"] for o in parse_json(nno("operator", "list", "--json"))["data"]] == ["root@example.com"]


def test_a_user_cannot_list_or_grant(live_server, nno):
    login_new_user(live_server, nno, "plain@example.com")
    for args in (("operator", "list"), ("operator", "grant", "plain@example.com")):
        assert "FORBIDDEN" in assert_clean_failure(nno(*args))
