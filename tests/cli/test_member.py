"""`nno member invite|invitations|cancel-invite|accept|list`: a platform-admin invites, the invitee
(signed in with the proven address) accepts with the mailed token; refusals are one clean line."""

from __future__ import annotations

import re
from urllib.parse import unquote

from tests.cli.conftest import assert_clean_failure, login_new_user, onboard, parse_json


def _mail_bodies(server, to: str) -> list[str]:
    resp = server.http.get("/api/v1/iam/api/nno/mail/outbox", params={"to": to}, headers=server.service())
    assert resp.status_code == 200, resp.text
    return [str(m["body"]) for m in resp.json()["data"]]


def _proven_token(server, email: str) -> str:
    """A session of an account whose address is proven (signed in by the magic link mailed to it)."""
    assert server.http.post("/api/v1/iam/api/auth/sign-in/magic-link", json={"email": email}).status_code == 200
    link = next(m.group(1) for b in _mail_bodies(server, email)
                if (m := re.search(r"(/api/v1/iam/api/auth/magic-link/verify\?\S+)", b)))
    opened = server.http.get(link)
    assert opened.status_code == 200, opened.text
    server.http.cookies.clear()
    return str(opened.json()["token"])


def test_invite_list_cancel_and_accept(live_server, nno, nno_home):
    login_new_user(live_server, nno, "boss@example.com")
    platform_id = onboard(nno, "Team", "team")["platformId"]

    sent = nno("member", "invite", "kim@example.com", "--role", "platform-admin", "-p", platform_id)
    assert sent.exit_code == 0 and "Invited kim@example.com" in sent.stdout, sent.output
    other = parse_json(nno("member", "invite", "lee@example.com", "-p", platform_id, "--json"))
    listed = parse_json(nno("member", "invitations", "-p", platform_id, "--json"))
    assert {i["email"] for i in listed["data"]} == {"kim@example.com", "lee@example.com"}
    assert "lee@example.com" in nno("member", "invitations", "-p", platform_id).stdout

    assert "ALREADY_INVITED" in assert_clean_failure(nno("member", "invite", "kim@example.com", "-p", platform_id))
    assert "VALIDATION" in assert_clean_failure(nno("member", "invite", "x@example.com", "--role", "owner",
                                                    "-p", platform_id))
    cancelled = nno("member", "cancel-invite", other["id"])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.stdout
    assert "INVITATION_NOT_PENDING" in assert_clean_failure(nno("member", "cancel-invite", other["id"]))

    link = next(m.group(0) for b in _mail_bodies(live_server, "kim@example.com")
                if (m := re.search(r"\S+/invitations/accept\?token=\S+", b)))
    token = unquote(link.split("token=", 1)[1])
    kim_home = {"NNO_HOME": str(nno_home.parent / "kim-home")}
    assert nno("login", "--token", _proven_token(live_server, "kim@example.com"), env=kim_home).exit_code == 0
    mine = parse_json(nno("member", "invitations", "--mine", "--json", env=kim_home))
    assert [i["email"] for i in mine["data"]] == ["kim@example.com"]
    # The link as mailed (a bare token may start with '-', which only works after `--`).
    accepted = nno("member", "accept", link, env=kim_home)
    assert accepted.exit_code == 0 and f"platform-admin of platform {platform_id}" in accepted.stdout, accepted.output
    assert "INVITATION_NOT_PENDING" in assert_clean_failure(nno("member", "accept", "--", token, env=kim_home))
    members = parse_json(nno("member", "list", "-p", platform_id, "--json"))
    assert sorted(m["role"] for m in members["data"]) == ["platform-admin", "platform-admin"]
