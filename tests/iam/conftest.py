"""Helpers for IAM tests: everything goes through the gateway at /api/v1/iam."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.iam.auth_app import AUTH_MIGRATIONS_DIR, create_auth_app
from nno.kernel.config import Settings
from nno.kernel.db import Database, sqlite_url
from nno.kernel.migrations import upgrade
from tests.conftest import BASE_URL

IAM = "/api/v1/iam"
PASSWORD = "correct-horse-9"


@asynccontextmanager
async def platform_auth_db(settings: Settings, tmp_path: Path, pid: str) -> AsyncIterator[Database]:
    """A platform's own auth database, migrated, as the local cloud makes it: a SQLite file embedded,
    a schema of its own in the test's PostgreSQL database scaled."""
    if settings.database_url:
        db = Database(settings.database_url, schema=f"auth_{pid}")
    else:
        db = Database(sqlite_url(tmp_path / f"{pid}-default-auth-db.sqlite"))
    await upgrade(db, AUTH_MIGRATIONS_DIR)
    try:
        yield db
    finally:
        await db.dispose()


@asynccontextmanager
async def platform_auth_client(db: Database, settings: Settings, pid: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on that platform's auth app (`create_auth_app`), at its own host."""
    app = create_auth_app(db, settings, platform_id=pid)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=f"http://auth.{pid}.nno.localhost:8787") as client:
        yield client


@dataclass
class Account:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD, name: str = "Test User",
                  prefix: str = IAM) -> Account:
    resp = await client.post(f"{prefix}/api/auth/sign-up/email", json={"email": email, "password": password,
                                                                    "name": name})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    client.cookies.clear()  # tests pass tokens explicitly
    return Account(body["user"]["id"], body["user"]["email"], body["token"])


async def magic_sign_in(client: httpx.AsyncClient, db: Database, email: str, prefix: str = IAM) -> Account:
    """An account whose address is proven: signed in (or up) by the magic link just mailed to it, read
    from the development outbox. `prefix`: where the app's routes are (IAM behind the gateway, or "")."""
    from sqlalchemy import text

    query = text("SELECT body FROM mail_outbox WHERE to_address = :t AND kind = 'magic_link' "
                 "ORDER BY created_at DESC, id LIMIT 1")
    resp = await client.post(f"{prefix}/api/auth/sign-in/magic-link", json={"email": email})
    assert resp.status_code == 200, resp.text
    async with db.session() as s:
        body = (await s.execute(query, {"t": email.lower()})).scalar_one()
    match = re.search(r"/api/auth/magic-link/verify\?token=\S+", body)
    assert match, body
    opened = await client.get(prefix + match.group(0))
    assert opened.status_code == 200, opened.text
    client.cookies.clear()
    data = opened.json()
    return Account(data["user"]["id"], data["user"]["email"], data["token"])


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    resp = await client.post(f"{IAM}/api/auth/sign-in/email", json={"email": email, "password": password})
    client.cookies.clear()
    return resp


def iam_db(core: Core) -> Database:
    return core.context("iam").db


async def rows(core: Core, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    async with iam_db(core).session() as s:
        return list((await s.execute(text(sql), params)).all())


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert "error" in body, body
    assert body["error"]["requestId"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def assert_no_session(resp: httpx.Response) -> None:
    """Better Auth's `get-session` answer without a live session: 200 with a `null` body."""
    assert resp.status_code == 200 and resp.json() is None, resp.text


@pytest.fixture
def iam() -> str:
    return IAM


async def bootstrap_operator(client: httpx.AsyncClient, service_headers: dict[str, str],
                             email: str = "root@nno.localhost") -> Account:
    resp = await client.post(f"{IAM}/api/nno/bootstrap", headers=service_headers,
                             json={"email": email, "password": PASSWORD, "name": "Root"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return Account(body["user"]["id"], body["user"]["email"], body["token"])


async def create_org(client: httpx.AsyncClient, owner: Account, slug: str, name: str | None = None
                     ) -> dict[str, Any]:
    resp = await client.post(f"{IAM}/api/auth/organization/create", headers=owner.headers,
                             json={"name": name or slug.title(), "slug": slug})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def add_member(client: httpx.AsyncClient, admin: Account, org_id: str, user: Account,
                     role: str = "member") -> None:
    resp = await client.post(f"{IAM}/api/auth/organization/add-member", headers=admin.headers,
                             json={"organizationId": org_id, "userId": user.id, "role": role})
    assert resp.status_code == 201, resp.text


async def outbox(core: Core, to: str) -> list[str]:
    found = await rows(core, "SELECT body FROM mail_outbox WHERE to_address = :to ORDER BY created_at", to=to)
    return [r[0] for r in found]


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with test-sized costs: the production parameters cost ~0.2 s a hash, which would
    dominate the suite on a shared machine."""
    from argon2 import PasswordHasher

    from nno.iam import security

    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(security, "_hasher", hasher)
    monkeypatch.setattr(security, "_DUMMY_HASH", hasher.hash("dummy-password-1"))


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    """The gateway in front of IAM alone: IAM needs no other service, and starting (and migrating) only
    it keeps each test's setup short, on PostgreSQL above all."""
    instance = Core(settings, services=["iam"], with_edge=False)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


# ---- Better Auth's surface, on both targets its client talks to -----------------------------------

@dataclass
class Target:
    client: httpx.AsyncClient
    prefix: str  # where the app's `/api/auth/*` routes are
    db: Database

    def url(self, path: str) -> str:
        return f"{self.prefix}{path}"

    async def sign_up(self, email: str) -> Account:
        return await sign_up(self.client, email, prefix=self.prefix)

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        resp = await self.client.post(self.url("/api/auth/sign-in/email"),
                                      json={"email": email, "password": password})
        self.client.cookies.clear()
        return resp

    async def second_session(self, email: str) -> Account:
        body = (await self.sign_in(email)).json()
        return Account(body["user"]["id"], email, body["token"])

    async def get_session(self, acct: Account | None) -> httpx.Response:
        return await self.client.get(self.url("/api/auth/get-session"), headers=acct.headers if acct else {})


@pytest.fixture(params=["gateway", "platform"])
async def target(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> AsyncIterator[Target]:
    if request.param == "gateway":
        # What the `core` and `client` fixtures give (an async fixture cannot request them lazily).
        core = Core(settings, services=["iam"], with_edge=False)
        await core.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=BASE_URL) as client:
                yield Target(client, IAM, iam_db(core))
        finally:
            await core.stop()
        return
    async with platform_auth_db(settings, tmp_path, "platba0001") as db:
        async with platform_auth_client(db, settings, "platba0001") as client:
            yield Target(client, "", db)


def assert_better_auth_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Both clients' reading of one error body: Better Auth's top-level code and message, and the
    NNO envelope with the same code."""
    err = assert_error(resp, status, code)
    body = resp.json()
    assert body["code"] == code and body["message"] == err["message"] and body["message"], body
    return body
