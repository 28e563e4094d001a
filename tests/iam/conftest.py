"""Helpers for IAM tests: everything goes through the gateway at /api/v1/iam."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.db import Database

IAM = "/api/v1/iam"
PASSWORD = "correct-horse-9"


@dataclass
class Account:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD, name: str = "Test User"
                  ) -> Account:
    resp = await client.post(f"{IAM}/api/auth/sign-up/email", json={"email": email, "password": password,
                                                                    "name": name})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    client.cookies.clear()  # tests pass tokens explicitly
    return Account(body["user"]["id"], body["user"]["email"], body["token"])


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


@pytest.fixture
def iam() -> str:
    return IAM
