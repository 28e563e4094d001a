"""A browser-like client for the Portal: its own cookie jar on the core's ASGI app, and helpers
that read a page's CSRF token and post its forms the way the browser does."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from nno.core import Core
from tests.conftest import BASE_URL, SERVICE_KEY

PASSWORD = "correct-horse-battery-9"
IAM = "/api/v1/iam"
_CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


class Browser:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        resp = await self.http.get(path, **kw)
        found = _CSRF_RE.search(resp.text)
        if found:
            self.csrf = found.group(1)
        return resp

    async def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True,
                   **kw: Any) -> httpx.Response:
        if csrf and not self.csrf:
            await self.get("/sign-in")
        form = {**(data or {}), **({"csrf": self.csrf} if csrf else {})}
        resp = await self.http.post(path, data=form, **kw)
        found = _CSRF_RE.search(resp.text)
        if found:
            self.csrf = found.group(1)
        return resp

    async def sign_up(self, email: str, name: str = "Test User") -> httpx.Response:
        resp = await self.post("/sign-up", {"name": name, "email": email, "password": PASSWORD})
        assert resp.status_code == 303, resp.text
        return resp

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.post("/sign-in", {"email": email, "password": password, "next": "/platforms"})

    async def onboard(self, name: str, slug: str) -> str:
        """Creates a platform through the wizard and follows its progress; the platform id."""
        resp = await self.post("/platforms/new", {"name": name, "slug": slug, "tier": "starter"})
        assert resp.status_code == 303, resp.text
        progress = resp.headers["location"] + "/progress"
        for _ in range(400):
            resp = await self.get(progress, headers={"HX-Request": "true"})
            assert resp.status_code == 200, resp.text
            target = resp.headers.get("hx-redirect")
            if target:
                match = re.match(r"/platforms/([a-z0-9]+)\?welcome=1$", target)
                assert match, target
                return match.group(1)
            assert "Provisioning failed" not in resp.text, resp.text
            await asyncio.sleep(0.05)
        raise AssertionError("provisioning did not finish")


@pytest.fixture
async def browser_factory(core: Core) -> AsyncIterator[Callable[[], Browser]]:
    clients: list[httpx.AsyncClient] = []

    def make() -> Browser:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=BASE_URL)
        clients.append(http)
        return Browser(http)

    yield make
    for http in clients:
        await http.aclose()


@pytest.fixture
def browser(browser_factory: Callable[[], Browser]) -> Browser:
    return browser_factory()


async def make_operator(client: httpx.AsyncClient, email: str) -> None:
    resp = await client.post(f"{IAM}/api/nno/bootstrap", headers={"Authorization": f"Bearer {SERVICE_KEY}"},
                             json={"email": email, "password": PASSWORD, "name": "Operator"})
    assert resp.status_code == 201, resp.text


async def mails(client: httpx.AsyncClient, to: str) -> list[str]:
    resp = await client.get(f"{IAM}/api/nno/mail/outbox", params={"to": to},
                            headers={"Authorization": f"Bearer {SERVICE_KEY}"})
    assert resp.status_code == 200, resp.text
    return [str(m["body"]) for m in resp.json()["data"]]


async def follow_job(browser: Browser, job_page: str) -> str:
    """Polls a job page's htmx fragment until it stops polling (the job ended); its last text."""
    assert re.fullmatch(r"/platforms/[a-z0-9]+/jobs/[A-Za-z0-9_-]+", job_page), job_page
    page = await browser.get(job_page)
    assert page.status_code == 200, page.text
    for _ in range(1200):
        resp = await browser.get(job_page + "/progress", headers={"HX-Request": "true"})
        assert resp.status_code == 200, resp.text
        if 'hx-trigger="every 1s"' not in resp.text:
            return resp.text
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not end")


async def user_id(client: httpx.AsyncClient, browser: Browser) -> str:
    me = await client.get(f"{IAM}/api/nno/session",
                          headers={"Authorization": f"Bearer {browser.http.cookies['nno_session']}"})
    assert me.status_code == 200, me.text
    return str(me.json()["userId"])


async def add_member(client: httpx.AsyncClient, platform_id: str, uid: str, role: str = "user") -> None:
    resp = await client.post(f"{IAM}/api/nno/platform-members", headers={"Authorization": f"Bearer {SERVICE_KEY}"},
                             json={"platformId": platform_id, "userId": uid, "role": role})
    assert resp.status_code in (200, 201), resp.text
