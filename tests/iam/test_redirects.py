"""Redirect targets are judged as a browser reads them (WHATWG URL parsing), in every flow that
redirects (magic link, password reset, sign-in's callbackURL), on NNO's IAM through the gateway and on
a per-platform auth app, on both backends."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ada_url import URL
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from nno.core import Core
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.redirects import same_origin_target, with_query
from tests.iam.conftest import IAM, PASSWORD, platform_auth_client, platform_auth_db, sign_up

PID = "rd1rect0pq"
# Each passes a check on the raw string ("a local path") and leads elsewhere once a browser parses it,
# or leads elsewhere by a parsing rule a raw check may not know.
FOREIGN_TARGETS = ("/\t/evil.example/steal", "/\n/evil.example/steal", "/\r/evil.example/steal",
                   "/\r\n/evil.example", "\t//evil.example/x", " //evil.example/x", "/\\evil.example/x",
                   "\\\\evil.example/x", "https:evil.example/x", "http://127.0.0.1:8787\t@evil.example/")


def browser_origin(location: str, request_url: str) -> str:
    """Where a browser goes with this `Location` (or `url`), read against the page that answered."""
    return str(URL(location, request_url).origin)


def origin_of(url: str) -> str:
    return str(URL(url).origin)


async def mails(db: Database, email: str) -> list[str]:
    async with db.session() as s:
        found = await s.execute(text("SELECT body FROM mail_outbox WHERE to_address = :t ORDER BY created_at"),
                                {"t": email})
    return [row[0] for row in found.all()]


async def last_link(db: Database, email: str, route: str) -> str:
    match = re.search(rf"(https?://\S+{re.escape(route)}\?token=\S+)", (await mails(db, email))[-1])
    assert match, await mails(db, email)
    return match.group(1)


def local(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def assert_every_flow_stays_home(client: httpx.AsyncClient, db: Database, prefix: str, own: str,
                                       target: str, email: str) -> None:
    """Password reset (the mailed link, and the link with a callbackURL added), magic link, sign-in."""
    me = await sign_up(client, email, prefix=prefix)
    # Password reset: `redirectTo` goes into the mailed link, which redirects with the live token.
    resp = await client.post(f"{prefix}/api/auth/request-password-reset",
                             json={"email": me.email, "redirectTo": target})
    assert resp.status_code == 200, resp.text
    link = await last_link(db, me.email, "/api/auth/reset-password")
    opened = await client.get(local(link))
    if opened.status_code == 302:
        assert browser_origin(opened.headers["location"], link) == own, (target, opened.headers["location"])
    else:
        assert opened.status_code == 200, opened.text
    token = dict(httpx.QueryParams(urlsplit(link).query))["token"]
    opened = await client.get(f"{prefix}/api/auth/reset-password",
                              params={"token": token, "callbackURL": target})
    if opened.status_code == 302:
        assert browser_origin(opened.headers["location"], link) == own, (target, opened.headers["location"])
    # Magic link: `callbackURL` rides in the mailed link; opening it redirects with a session cookie.
    resp = await client.post(f"{prefix}/api/auth/sign-in/magic-link", json={"email": me.email, "callbackURL": target})
    assert resp.status_code == 200, resp.text
    link = await last_link(db, me.email, "/api/auth/magic-link/verify")
    opened = await client.get(local(link))
    client.cookies.clear()
    if opened.status_code == 302:
        assert browser_origin(opened.headers["location"], link) == own, (target, opened.headers["location"])
    else:
        assert opened.status_code == 200, opened.text
    # Sign-in: the answer's `url` is where the client navigates next.
    signed = await client.post(f"{prefix}/api/auth/sign-in/email",
                               json={"email": me.email, "password": PASSWORD, "callbackURL": target})
    client.cookies.clear()
    if signed.status_code == 200 and signed.json().get("url") is not None:
        assert browser_origin(signed.json()["url"], own + "/") == own, (target, signed.json())


@pytest.fixture
async def platform_db(tmp_path: Path, settings: Settings) -> AsyncIterator[Database]:
    async with platform_auth_db(settings, tmp_path, PID) as db:
        yield db


async def test_nno_iam_redirects_stay_on_its_origin(client: httpx.AsyncClient, core: Core) -> None:
    own = origin_of(core.settings.public_url)
    for i, target in enumerate(FOREIGN_TARGETS):
        await assert_every_flow_stays_home(client, core.context("iam").db, IAM, own, target, f"r{i}@example.com")


async def test_platform_auth_app_redirects_stay_on_its_origin(platform_db: Database, settings: Settings) -> None:
    async with platform_auth_client(platform_db, settings, PID) as client:
        own = origin_of(str(client.base_url))
        for i, target in enumerate(FOREIGN_TARGETS):
            await assert_every_flow_stays_home(client, platform_db, "", own, target, f"p{i}@example.com")


async def test_a_local_target_still_redirects_with_the_token(client: httpx.AsyncClient, core: Core) -> None:
    db = core.context("iam").db
    me = await sign_up(client, "home@example.com")
    await client.post(f"{IAM}/api/auth/request-password-reset",
                      json={"email": me.email, "redirectTo": "/console/reset?lang=en"})
    link = await last_link(db, me.email, "/api/auth/reset-password")
    opened = await client.get(local(link))
    assert opened.status_code == 302
    token = dict(httpx.QueryParams(urlsplit(link).query))["token"]
    assert opened.headers["location"] == f"{core.settings.public_url}/console/reset?lang=en&token={token}"


# ---- the validator itself: whatever it accepts, a browser reads as the allowed origin -----------------

BASES = ("http://127.0.0.1:8787/api/v1/iam", "https://auth.p1.nno.localhost:8787", "http://nno.example")
PIECES = st.sampled_from(["/", "//", "\\", "\t", "\n", "\r", " ", "\x00", "\x1f", "\x7f", "@", ":", ".", "?", "#",
                          "%2f", "%5c", "%09", "evil.example", "127.0.0.1", "8787", "auth.p1.nno.localhost",
                          "nno.example", "http", "https", "javascript", "data", "ftp", "user", "\u3002", "\uff0f",
                          "\uff3c", "a", "..", "localhost"])


@settings(max_examples=3000, deadline=None)
@given(target=st.lists(PIECES, max_size=12).map("".join), base=st.sampled_from(BASES))
def test_an_accepted_target_stays_on_the_origin_once_parsed(target: str, base: str) -> None:
    own = urlsplit(base)
    accepted = same_origin_target(target, base)
    if accepted is None:
        return
    # A browser, given the raw target on any page of the origin, lands on the origin...
    assert browser_origin(target, base.rstrip("/") + "/some/page") == origin_of(base)
    # ...and what is handed on reads the same to a browser and to another parser (Python's).
    assert browser_origin(accepted, "https://elsewhere.example/") == origin_of(base)
    parts = urlsplit(accepted)
    assert (parts.scheme, parts.hostname, parts.port) == (own.scheme, own.hostname, own.port)
    assert not re.search(r"[\x00-\x20\x7f]", accepted) and "@" not in parts.netloc
    assert "\\" not in parts.netloc + parts.path  # only a query or fragment may still hold one
    # Adding the token keeps it there.
    assert browser_origin(with_query(accepted, {"token": "t"}), "https://elsewhere.example/") == origin_of(base)


def test_foreign_and_local_examples() -> None:
    base = "http://127.0.0.1:8787/api/v1/iam"
    for target in (*FOREIGN_TARGETS, "https://evil.example/", "//evil.example", "javascript:alert(1)",
                   "http://user:pw@127.0.0.1:8787/", "https://127.0.0.1:8787/", "", None):
        assert same_origin_target(target, base) is None, target
    assert same_origin_target("/console?x=1#top", base) == "http://127.0.0.1:8787/console?x=1#top"
    assert same_origin_target(" /a\tb", base) == "http://127.0.0.1:8787/ab"
    assert same_origin_target("http://127.0.0.1:8787/x", base) == "http://127.0.0.1:8787/x"


# ---- every redirect parameter is one of those judged above ------------------------------------------

REDIRECT_NAME = re.compile(r"url|redirect|callback|return|next", re.I)
# Where each is judged (`safe_redirect`); SignUpBody's is accepted for Better Auth clients and unused.
JUDGED = {("GET /api/auth/magic-link/verify", "callbackURL"), ("GET /api/auth/reset-password", "callbackURL"),
          ("GET /api/auth/reset-password/{token}", "callbackURL"), ("SignInBody", "callbackURL"),
          ("MagicLinkBody", "callbackURL"), ("RequestPasswordResetBody", "redirectTo"),
          ("SignUpBody", "callbackURL")}


def redirect_parameters(spec: dict[str, Any]) -> set[tuple[str, str]]:
    found = {(f"{method.upper()} {path}", param["name"])
             for path, item in spec["paths"].items() for method, op in item.items() if isinstance(op, dict)
             for param in op.get("parameters", []) if REDIRECT_NAME.search(param["name"])}
    found |= {(schema, prop) for schema, body in spec.get("components", {}).get("schemas", {}).items()
              for prop in body.get("properties", {}) if REDIRECT_NAME.search(prop)}
    return found


async def test_every_redirect_parameter_is_judged(core: Core, platform_db: Database, settings: Settings) -> None:
    """A new redirect-like parameter on NNO's IAM or a platform's auth app fails here until it is judged
    by `safe_redirect` and listed in JUDGED."""
    from nno.iam.auth_app import create_auth_app

    nno_iam = core.apps["iam"].app.openapi()  # type: ignore[attr-defined]  # under the service middleware
    for spec in (nno_iam, create_auth_app(platform_db, settings, platform_id=PID).openapi()):
        assert redirect_parameters(spec) <= JUDGED, redirect_parameters(spec) - JUDGED
    assert redirect_parameters(nno_iam) == JUDGED
