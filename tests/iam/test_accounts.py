"""Sign-up, sign-in, throttling, sign-out, sessions as hashes, magic links, profile (through the gateway)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.core import Core
from nno.kernel.emails import normalize_email
from nno.kernel.ids import token_hash
from tests.iam.conftest import IAM, PASSWORD, assert_error, assert_no_session, outbox, rows, sign_in, sign_up


async def test_sign_up_returns_token_cookie_and_user(client: httpx.AsyncClient, core: Core) -> None:
    resp = await client.post(f"{IAM}/api/auth/sign-up/email",
                             json={"email": "Alice@Example.com", "password": PASSWORD, "name": "Alice"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["name"] == "Alice"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith(f"nno_session={body['token']}")
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    assert "Max-Age=604800" in cookie
    # The cookie alone is a valid credential at the gateway.
    me = await client.get(f"{IAM}/api/auth/get-session", cookies={"nno_session": body["token"]})
    assert me.status_code == 200
    assert me.json()["user"]["id"] == body["user"]["id"]


async def test_tokens_and_passwords_are_never_stored_in_clear(client: httpx.AsyncClient, core: Core) -> None:
    acct = await sign_up(client, "clear@example.com")
    stored = await rows(core, "SELECT token_hash FROM sessions")
    assert [r[0] for r in stored] == [token_hash(acct.token)]
    pw = await rows(core, "SELECT password_hash FROM users")
    assert pw[0][0].startswith("$argon2id$") and PASSWORD not in pw[0][0]
    # Nothing anywhere in the IAM tables holds the raw token.
    for table in ("sessions", "users", "audit_log"):
        for row in await rows(core, f"SELECT * FROM {table}"):
            assert all(acct.token not in str(v) for v in row)


async def test_duplicate_email_is_409_and_changes_nothing(client: httpx.AsyncClient, core: Core) -> None:
    await sign_up(client, "dup@example.com")
    resp = await client.post(f"{IAM}/api/auth/sign-up/email",
                             json={"email": "DUP@example.com", "password": PASSWORD, "name": "Other"})
    assert_error(resp, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    assert len(await rows(core, "SELECT id FROM users")) == 1


async def test_password_policy(client: httpx.AsyncClient, core: Core) -> None:
    for password in ["short1!", "onlyletters", "12345678901", " padded-pass1 ", "x" * 129 + "1",
                     "weak@example.com"]:
        resp = await client.post(f"{IAM}/api/auth/sign-up/email",
                                 json={"email": "weak@example.com", "password": password, "name": "W"})
        err = assert_error(resp, 422, "WEAK_PASSWORD")
        assert err["details"]["requirements"]
    assert await rows(core, "SELECT id FROM users") == []


async def test_malformed_sign_up_is_400(client: httpx.AsyncClient, core: Core) -> None:
    bodies: list[object] = [
        {}, {"email": "a@example.com"}, {"email": "not-an-email", "password": PASSWORD, "name": "x"},
        {"email": "a@example.com", "password": PASSWORD, "name": ""},
        {"email": ["a@example.com"], "password": PASSWORD, "name": "x"}, ["not", "an", "object"],
    ]
    for body in bodies:
        assert_error(await client.post(f"{IAM}/api/auth/sign-up/email", json=body), 400, "VALIDATION_ERROR")
    raw = await client.post(f"{IAM}/api/auth/sign-up/email", content=b"{nope",
                            headers={"content-type": "application/json"})
    assert_error(raw, 400, "VALIDATION_ERROR")
    assert await rows(core, "SELECT id FROM users") == []


async def test_sign_in_failures_do_not_reveal_whether_email_exists(client: httpx.AsyncClient) -> None:
    await sign_up(client, "known@example.com")
    wrong = await sign_in(client, "known@example.com", "wrong-password-1")
    unknown = await sign_in(client, "nobody@example.com", "wrong-password-1")
    e1 = assert_error(wrong, 401, "INVALID_EMAIL_OR_PASSWORD")
    e2 = assert_error(unknown, 401, "INVALID_EMAIL_OR_PASSWORD")
    assert e1["message"] == e2["message"]
    assert "set-cookie" not in wrong.headers
    ok = await sign_in(client, "KNOWN@example.com")
    assert ok.status_code == 200 and ok.json()["token"]


async def test_repeated_failures_are_slowed_down(client: httpx.AsyncClient, core: Core) -> None:
    await sign_up(client, "target@example.com")
    for _ in range(5):
        assert (await sign_in(client, "target@example.com", "guess-123")).status_code == 401
    # Locked: even the right password is refused, with Retry-After.
    locked = await sign_in(client, "target@example.com")
    assert_error(locked, 429, "TOO_MANY_ATTEMPTS")
    assert int(locked.headers["retry-after"]) >= 1
    # The same holds for an address with no account: the answer does not reveal existence.
    for _ in range(5):
        await sign_in(client, "ghost@example.com", "guess-123")
    ghost = await sign_in(client, "ghost@example.com", "guess-123")
    assert_error(ghost, 429, "TOO_MANY_ATTEMPTS")
    # Backoff grows with further failures once the lock expires.
    first = (await rows(core, "SELECT locked_until FROM auth_throttle WHERE key = 'email:target@example.com'"))[0][0]
    async with core.context("iam").db.session() as s:
        from sqlalchemy import text

        await s.execute(text("UPDATE auth_throttle SET locked_until = 0 WHERE key = 'email:target@example.com'"))
    assert (await sign_in(client, "target@example.com", "guess-123")).status_code == 401
    row = (await rows(core, "SELECT failures, locked_until, window_start FROM auth_throttle "
                            "WHERE key = 'email:target@example.com'"))[0]
    assert row[0] == 6 and row[1] - row[2] > 0 and row[1] > first
    async with core.context("iam").db.session() as s:
        await s.execute(text("UPDATE auth_throttle SET locked_until = 0 WHERE key = 'email:target@example.com'"))
    # A success clears the counter.
    assert (await sign_in(client, "target@example.com")).status_code == 200
    assert await rows(core, "SELECT key FROM auth_throttle WHERE key = 'email:target@example.com'") == []


async def test_sign_out_revokes_and_clears_cookie(client: httpx.AsyncClient, core: Core) -> None:
    acct = await sign_up(client, "out@example.com")
    resp = await client.post(f"{IAM}/api/auth/sign-out", headers=acct.headers)
    assert resp.status_code == 200
    assert 'nno_session=""' in resp.headers["set-cookie"] or "Max-Age=0" in resp.headers["set-cookie"]
    assert await rows(core, "SELECT id FROM sessions") == []
    again = await client.post(f"{IAM}/api/auth/sign-out", headers=acct.headers)
    assert_error(again, 401)


async def test_get_session_without_or_with_bad_token(client: httpx.AsyncClient) -> None:
    assert_no_session(await client.get(f"{IAM}/api/auth/get-session"))
    assert_no_session(await client.get(f"{IAM}/api/auth/get-session", headers={"Authorization": "Bearer nope"}))


async def test_sliding_renewal_after_a_day(client: httpx.AsyncClient, core: Core) -> None:
    acct = await sign_up(client, "slide@example.com")
    day = 24 * 3600 * 1000
    async with core.context("iam").db.session() as s:
        from sqlalchemy import text

        await s.execute(text("UPDATE sessions SET updated_at = updated_at - :d, expires_at = expires_at - :d"),
                        {"d": 2 * day})
    before = (await rows(core, "SELECT expires_at FROM sessions"))[0][0]
    resp = await client.get(f"{IAM}/api/nno/session", headers=acct.headers)
    assert resp.status_code == 200
    after = (await rows(core, "SELECT expires_at FROM sessions"))[0][0]
    assert after >= before + 2 * day - 1000
    assert resp.json()["expiresAt"] == after


async def test_expired_session_is_refused(client: httpx.AsyncClient, core: Core) -> None:
    acct = await sign_up(client, "exp@example.com")
    async with core.context("iam").db.session() as s:
        from sqlalchemy import text

        await s.execute(text("UPDATE sessions SET expires_at = 1"))
    assert_no_session(await client.get(f"{IAM}/api/auth/get-session", headers=acct.headers))


async def test_profile_read_and_update(client: httpx.AsyncClient) -> None:
    acct = await sign_up(client, "prof@example.com", name="Before")
    resp = await client.patch(f"{IAM}/api/auth/profile", headers=acct.headers, json={"name": "After"})
    assert resp.status_code == 200 and resp.json()["user"]["name"] == "After"
    assert (await client.get(f"{IAM}/api/auth/profile", headers=acct.headers)).json()["user"]["name"] == "After"
    assert_error(await client.patch(f"{IAM}/api/auth/profile", headers=acct.headers,
                                    json={"email": "x@example.com"}), 400, "VALIDATION_ERROR")
    assert_error(await client.patch(f"{IAM}/api/auth/profile", json={"name": "x"}), 401)


async def test_change_password(client: httpx.AsyncClient) -> None:
    acct = await sign_up(client, "cp@example.com")
    other = (await sign_in(client, "cp@example.com")).json()["token"]
    bad = await client.post(f"{IAM}/api/auth/change-password", headers=acct.headers,
                            json={"currentPassword": "nope-nope-1", "newPassword": "new-pass-word-2"})
    assert_error(bad, 400, "INVALID_PASSWORD")
    ok = await client.post(f"{IAM}/api/auth/change-password", headers=acct.headers,
                           json={"currentPassword": PASSWORD, "newPassword": "new-pass-word-2",
                                 "revokeOtherSessions": True})
    assert ok.status_code == 200
    assert (await sign_in(client, "cp@example.com")).status_code == 401
    assert (await sign_in(client, "cp@example.com", "new-pass-word-2")).status_code == 200
    direct = await client.get(f"{IAM}/api/auth/get-session", headers={"Authorization": f"Bearer {other}"})
    assert_no_session(direct)


def _link(body: str) -> str:
    match = re.search(r"(http\S+/api/auth/magic-link/verify\?token=\S+)", body)
    assert match, body
    return match.group(1)


async def test_magic_link_signs_up_and_in_once(client: httpx.AsyncClient, core: Core) -> None:
    resp = await client.post(f"{IAM}/api/auth/sign-in/magic-link", json={"email": "Magic@Example.com"})
    assert resp.status_code == 200 and resp.json() == {"status": True}
    mails = await outbox(core, "magic@example.com")
    assert len(mails) == 1
    link = _link(mails[0])
    assert link.startswith(core.settings.public_url + "/api/v1/iam/api/auth/magic-link/verify?token=")
    raw = link.split("token=")[1]
    assert await rows(core, "SELECT id FROM verifications WHERE token_hash = :h", h=token_hash(raw))
    assert await rows(core, "SELECT id FROM verifications WHERE token_hash = :h", h=raw) == []
    verified = await client.get(link.replace(core.settings.public_url, ""))
    assert verified.status_code == 200, verified.text
    token = verified.json()["token"]
    client.cookies.clear()
    me = await client.get(f"{IAM}/api/nno/session", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == "magic@example.com"
    assert (await rows(core, "SELECT email_verified FROM users"))[0][0] in (True, 1)
    reused = await client.get(link.replace(core.settings.public_url, ""))
    assert_error(reused, 401, "INVALID_TOKEN")


async def test_magic_link_redirect_and_expiry(client: httpx.AsyncClient, core: Core) -> None:
    await sign_up(client, "ml@example.com")
    for cb in ("/console", "https://evil.example.com/steal"):
        await client.post(f"{IAM}/api/auth/sign-in/magic-link", json={"email": "ml@example.com", "callbackURL": cb})
    first, second = (_link(b) for b in await outbox(core, "ml@example.com"))
    resp = await client.get(first.replace(core.settings.public_url, ""), follow_redirects=False)
    assert resp.status_code == 302 and resp.headers["location"] == f"{core.settings.public_url}/console"
    assert "nno_session=" in resp.headers["set-cookie"]
    client.cookies.clear()
    # An off-site callback is never followed: the answer is the session as JSON.
    resp = await client.get(second.replace(core.settings.public_url, ""), follow_redirects=False)
    assert resp.status_code == 200
    client.cookies.clear()
    await client.post(f"{IAM}/api/auth/sign-in/magic-link", json={"email": "ml@example.com"})
    async with core.context("iam").db.session() as s:
        from sqlalchemy import text

        await s.execute(text("UPDATE verifications SET expires_at = 1 WHERE used_at IS NULL"))
    third = _link((await outbox(core, "ml@example.com"))[-1])
    assert_error(await client.get(third.replace(core.settings.public_url, "")), 410, "TOKEN_EXPIRED")
    assert_error(await client.get(f"{IAM}/api/auth/magic-link/verify"), 400, "VALIDATION_ERROR")


@settings(max_examples=40, deadline=None)
@given(local=st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True),
       domain=st.sampled_from(["example.com", "nno.localhost", "Sub.Example.ORG"]))
def test_email_normalization_is_case_insensitive_and_idempotent(local: str, domain: str) -> None:
    if ".." in local:
        return
    email = f"{local}@{domain}"
    norm = normalize_email(email.upper() if local.isascii() else email)
    assert norm == email.lower()
    assert normalize_email(norm) == norm


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.one_of(st.text(max_size=30).filter(lambda s: "@" not in s),
                     st.from_regex(r"@[a-z]{1,5}\.com", fullmatch=True),
                     st.from_regex(r"[a-z]{1,5}@", fullmatch=True)))
async def test_invalid_emails_are_400(client: httpx.AsyncClient, bad: str) -> None:
    resp = await client.post(f"{IAM}/api/auth/sign-in/email", json={"email": bad, "password": "whatever-1"})
    assert_error(resp, 400, "VALIDATION_ERROR")


async def test_magic_links_are_rate_limited_per_address(client: httpx.AsyncClient, core: Core) -> None:
    for _ in range(5):
        ok = await client.post(f"{IAM}/api/auth/sign-in/magic-link", json={"email": "flood@example.com"})
        assert ok.status_code == 200
    limited = await client.post(f"{IAM}/api/auth/sign-in/magic-link", json={"email": "flood@example.com"})
    assert_error(limited, 429, "TOO_MANY_REQUESTS")
    assert limited.headers["retry-after"] == "60"
    assert len(await outbox(core, "flood@example.com")) == 5
    other = await client.post(f"{IAM}/api/auth/sign-in/magic-link", json={"email": "calm@example.com"})
    assert other.status_code == 200


async def test_sign_in_without_remember_me_is_a_browser_session(client: httpx.AsyncClient, core: Core) -> None:
    await sign_up(client, "short@example.com")
    resp = await client.post(f"{IAM}/api/auth/sign-in/email",
                             json={"email": "short@example.com", "password": PASSWORD, "rememberMe": False})
    assert resp.status_code == 200
    assert "Max-Age" not in resp.headers["set-cookie"]
    session = resp.json()["session"]
    lasts = datetime.fromisoformat(session["expiresAt"]) - datetime.fromisoformat(session["createdAt"])
    assert lasts == timedelta(days=1)


async def test_old_password_hashes_are_upgraded_at_sign_in(client: httpx.AsyncClient, core: Core) -> None:
    from argon2 import PasswordHasher
    from sqlalchemy import text

    await sign_up(client, "old@example.com")
    weaker = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(PASSWORD)
    async with core.context("iam").db.session() as s:
        await s.execute(text("UPDATE users SET password_hash = :h"), {"h": weaker})
    assert (await sign_in(client, "old@example.com")).status_code == 200
    stored = (await rows(core, "SELECT password_hash FROM users"))[0][0]
    assert stored != weaker and stored.startswith("$argon2id$")
    assert (await sign_in(client, "old@example.com")).status_code == 200
