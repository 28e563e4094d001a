"""Live sign-in and reset tokens are never stored or logged in clear (outside the development
outbox): not in the mail outbox, not in any IAM table, not in the database files, not in the log,
not in the operators' outbox API; with SMTP the mail still carries them, and the links still work."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email import message_from_string
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from nno.core import Core
from nno.iam import accounts, password_reset
from nno.iam.models import Base
from nno.kernel.config import Settings
from nno.kernel.db import Database
from tests.conftest import BASE_URL
from tests.iam.conftest import IAM, PASSWORD, platform_auth_client, platform_auth_db, sign_up
from tests.iam.test_mailer import FakeSMTP

PID = "m4ilsecr3t"


@pytest.fixture
def minted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every magic-link and reset token IAM mints in the test, as the mail's recipient would get it."""
    tokens: list[str] = []
    for module in (accounts, password_reset):
        original = module.new_secret

        def recording(original: Callable[[], tuple[str, str]] = original) -> tuple[str, str]:
            token, digest = original()
            tokens.append(token)
            return token, digest

        monkeypatch.setattr(module, "new_secret", recording)
    return tokens


@asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[tuple[Core, httpx.AsyncClient]]:
    core = Core(settings, services=["iam"], with_edge=False)
    await core.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=BASE_URL) as client:
            yield core, client
    finally:
        await core.stop()


def key_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.auth_api_key}"}


async def every_stored_text(db: Database) -> str:
    """Every row of every IAM table, as text."""
    out = []
    async with db.session() as s:
        for table in Base.metadata.sorted_tables:
            for row in (await s.execute(select(table))).all():
                out.append(json.dumps([str(v) for v in row]))
    return "\n".join(out)


def files_under(root: Path) -> Iterator[bytes]:
    for path in root.rglob("*"):
        if path.is_file():
            yield path.read_bytes()


async def ask_for_links(client: httpx.AsyncClient, prefix: str, email: str) -> None:
    await sign_up(client, email, prefix=prefix)
    for route, body in (("sign-in/magic-link", {"email": email, "callbackURL": "/console"}),
                        ("request-password-reset", {"email": email, "redirectTo": "/console/reset"})):
        resp = await client.post(f"{prefix}/api/auth/{route}", json=body)
        assert resp.status_code == 200, resp.text


async def assert_nothing_kept(db: Database, logs: list[dict[str, Any]], tokens: list[str],
                              data_dir: Path | None) -> None:
    assert len(tokens) == 2
    stored = await every_stored_text(db)
    logged = json.dumps(logs, default=str)
    for token in tokens:
        assert token not in stored and token not in logged
        if data_dir is not None:  # the SQLite files, journals included
            assert not any(token.encode() in blob for blob in files_under(data_dir))
    assert "[redacted]" in stored


async def test_with_a_service_key_and_no_smtp_no_token_is_kept(
        make_settings: Callable[..., Settings], minted: list[str]) -> None:
    settings = make_settings(dev_outbox=None)
    assert not settings.dev_outbox_enabled
    with capture_logs() as logs:
        async with gateway(settings) as (core, client):
            await ask_for_links(client, IAM, "nokeep@example.com")
            db = core.context("iam").db
            await assert_nothing_kept(db, logs, minted, None if settings.database_url else settings.data_dir)
            # The outbox API says why, and shows no live link.
            root = (await client.post(f"{IAM}/api/nno/bootstrap", headers=key_headers(settings),
                                      json={"email": "root@example.com", "password": PASSWORD, "name": "Root"})).json()
            listed = await client.get(f"{IAM}/api/nno/mail/outbox",
                                      headers={"Authorization": f"Bearer {root['token']}"})
            assert listed.status_code == 200 and listed.json()["devOutbox"] is False
            assert {m["status"] for m in listed.json()["data"]} == {"undelivered"}
            assert not any(t in listed.text for t in minted)
            # The links themselves still work for whoever holds them (here: the minted token).
            signed = await client.get(f"{IAM}/api/auth/magic-link/verify", params={"token": minted[0]})
            assert signed.status_code == 200, signed.text
    assert any(e["event"] == "mail_undelivered" for e in logs)


async def test_with_smtp_the_mail_carries_the_link_and_nothing_else_does(
        make_settings: Callable[..., Settings], minted: list[str]) -> None:
    server = FakeSMTP()
    await server.start()
    try:
        # NNO_DEV_OUTBOX never keeps a body once SMTP is set.
        settings = make_settings(smtp_url=f"smtp://127.0.0.1:{server.port}", dev_outbox=True)
        with capture_logs() as logs:
            async with gateway(settings) as (core, client):
                await ask_for_links(client, IAM, "smtp@example.com")
                await assert_nothing_kept(core.context("iam").db, logs, minted,
                                          None if settings.database_url else settings.data_dir)
    finally:
        await server.stop()
    sent = "".join(str(message_from_string(m, policy=default).get_content()) for m in server.messages)
    assert all(token in sent for token in minted)


async def test_a_platform_auth_app_keeps_no_token(
        make_settings: Callable[..., Settings], minted: list[str], tmp_path: Path) -> None:
    settings = make_settings(dev_outbox=None)
    with capture_logs() as logs:
        async with platform_auth_db(settings, tmp_path, PID) as db, \
                platform_auth_client(db, settings, PID) as client:
            await ask_for_links(client, "", "plat@example.com")
            await assert_nothing_kept(db, logs, minted, None if settings.database_url else tmp_path)


async def test_the_dev_outbox_says_so(make_settings: Callable[..., Settings], minted: list[str]) -> None:
    settings = make_settings(dev_outbox=True)
    async with gateway(settings) as (_, client):
        await ask_for_links(client, IAM, "dev@example.com")
        listed = await client.get(f"{IAM}/api/nno/mail/outbox", headers=key_headers(settings))
    assert listed.json()["devOutbox"] is True and "Development outbox" in listed.json()["notice"]
    assert all(t in listed.text for t in minted)


async def test_a_reset_token_in_the_path_is_not_logged(make_settings: Callable[..., Settings],
                                                        minted: list[str]) -> None:
    async with gateway(make_settings()) as (_, client):
        await ask_for_links(client, IAM, "path@example.com")
        with capture_logs() as logs:
            await client.get(f"{IAM}/api/auth/reset-password/{minted[1]}")
    access = [e for e in logs if e.get("event") == "request"]
    assert access and not re.search(re.escape(minted[1]), json.dumps(access))


@pytest.mark.parametrize(("key", "flag", "smtp", "on"), [
    (None, None, None, True), ("k", None, None, False), ("k", True, None, True), (None, False, None, False),
    (None, True, "smtp://h:25", False), ("k", True, "smtp://h:25", False)])
def test_when_the_dev_outbox_is_on(tmp_path: Path, key: str | None, flag: bool | None, smtp: str | None,
                                   on: bool) -> None:
    settings = Settings(auth_api_key=key, dev_outbox=flag, smtp_url=smtp, data_dir=tmp_path)
    assert settings.dev_outbox_enabled is on
