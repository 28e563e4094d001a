"""Onboarding while Provisioning or the CLI Service does not answer (issue 18, goal 7): the
`provision_infra` and `setup_repo` steps wait instead of failing, and are asked for again in the
background until the service answers; the platform then becomes active, and the session completes,
with no one doing anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.conftest import running_core
from tests.registry.conftest import ONB, P, User, unique

from nno.core import Core
from nno.kernel.bindings import BindingResponse, UpstreamError
from nno.kernel.config import Settings
from nno.registry.onboarding import NOTE_CLI_RETRYING, NOTE_RETRYING, OnboardingResumer, OnboardingService


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    async with running_core(settings) as instance:
        yield instance


class Down:
    """A service's binding while its process is down (or not started yet): the connection is
    refused, or (`status`) a proxy in front of it answers with a 5xx."""

    def __init__(self, name: str, status: int | None = None) -> None:
        self.name = name
        self.status = status
        self.calls = 0

    async def request(self, method: str, path: str, **_: Any) -> BindingResponse:
        self.calls += 1
        if self.status is not None:
            return BindingResponse(self.status, {}, b'{"error":{"code":"SERVICE_UNAVAILABLE","message":"down"}}')
        raise UpstreamError(502, f"service {self.name} is unreachable: ClientConnectorError")

    async def close(self) -> None:
        return None


def _step(session: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in session["steps"] if s["name"] == name)


async def test_a_step_waiting_on_provisioning_resumes_once_it_answers(
        core: Core, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]]) -> None:
    resumer = OnboardingResumer.of(core.context("registry"))
    resumer.first_delay_s = resumer.max_delay_s = 0.05
    real = core.bindings.get("provisioning")
    assert real is not None
    down = Down("provisioning")
    core.bindings.add(down)  # type: ignore[arg-type]
    user = await make_user("waiting")
    resp = await client.post(ONB, json={"platformName": "Patient Co", "slug": unique("patient"), "tier": "starter"},
                             headers=user.headers)
    assert resp.status_code == 201, resp.text
    session = resp.json()
    infra = _step(session, "provision_infra")
    assert infra["status"] == "pending" and infra["note"].startswith(NOTE_RETRYING), session
    assert session["status"] != "failed" and session["provisionJobId"] is None
    for _ in range(400):  # asked again in the background while it stays down
        if down.calls >= 3:
            break
        await asyncio.sleep(0.02)
    assert down.calls >= 3
    waiting = (await client.get(f"{ONB}/{session['id']}", headers=user.headers)).json()
    assert _step(waiting, "provision_infra")["status"] == "pending" and waiting["provisionJobId"] is None

    core.bindings.add(real)  # Provisioning comes up
    final: dict[str, Any] = {}
    for _ in range(600):
        final = (await client.get(f"{ONB}/{session['id']}", headers=user.headers)).json()
        if _step(final, "verify")["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert final["provisionJobId"] and _step(final, "provision_infra")["status"] == "completed", final
    assert (await client.get(f"{P}/{session['platformId']}", headers=user.headers)).json()["status"] == "active"


async def test_provisioning_refusing_the_job_still_fails_the_step(
        core: Core, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]]) -> None:
    """Only silence (or a 5xx) is waited out: a refusal is an answer."""

    class Refuses(Down):
        async def request(self, method: str, path: str, **_: Any) -> BindingResponse:
            return BindingResponse(422, {}, b'{"error":{"code":"VALIDATION_ERROR","message":"no"}}')

    core.bindings.add(Refuses("provisioning"))  # type: ignore[arg-type]
    user = await make_user("refused")
    resp = await client.post(ONB, json={"platformName": "Refused Co", "slug": unique("refused"), "tier": "starter"},
                             headers=user.headers)
    assert resp.status_code == 201, resp.text
    assert _step(resp.json(), "provision_infra")["status"] == "failed"


@pytest.mark.parametrize("status", [None, 503])
async def test_setup_repo_waits_for_the_cli_service_and_the_session_completes_once_it_answers(
        core: Core, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]], status: int | None) -> None:
    resumer = OnboardingResumer.of(core.context("registry"))
    resumer.first_delay_s = resumer.max_delay_s = 0.05
    real = core.bindings.get("cli")
    assert real is not None
    down = Down("cli", status)
    core.bindings.add(down)  # type: ignore[arg-type]
    user = await make_user("norepo")
    resp = await client.post(ONB, json={"platformName": "Repoless Co", "slug": unique("norepo"), "tier": "starter"},
                             headers=user.headers)
    assert resp.status_code == 201, resp.text
    session = resp.json()
    repo = _step(session, "setup_repo")
    assert repo["status"] == "pending" and repo["note"].startswith(NOTE_CLI_RETRYING), session
    assert session["status"] != "failed"
    waiting: dict[str, Any] = {}
    for _ in range(600):  # asked again in the background while it stays down; the platform goes on
        waiting = (await client.get(f"{ONB}/{session['id']}", headers=user.headers)).json()
        if down.calls >= 3 and _step(waiting, "verify")["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert down.calls >= 3 and _step(waiting, "verify")["status"] == "completed", waiting
    assert _step(waiting, "setup_repo")["status"] == "pending" and waiting["status"] == "in_progress", waiting

    core.bindings.add(real)  # the CLI Service comes up: it makes the repository, whose build deploys
    final: dict[str, Any] = {}
    for _ in range(600):
        final = (await client.get(f"{ONB}/{session['id']}", headers=user.headers)).json()
        if final["status"] != "in_progress":
            break
        await asyncio.sleep(0.05)
    assert final["status"] == "completed", final
    assert f"nno-platform-{session['platformId']}" in _step(final, "setup_repo")["note"]
    assert _step(final, "deploy_services")["status"] == "completed", final


async def test_the_cli_service_refusing_the_repository_still_fails_the_step(
        core: Core, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]]) -> None:
    """A 4xx is an answer: the step fails, saying so, and nothing asks again."""

    class Refuses(Down):
        async def request(self, method: str, path: str, **_: Any) -> BindingResponse:
            self.calls += 1
            return BindingResponse(404, {}, b'{"error":{"code":"PLATFORM_NOT_FOUND","message":"no"}}')

    refuses = Refuses("cli")
    core.bindings.add(refuses)  # type: ignore[arg-type]
    user = await make_user("norepo")
    resp = await client.post(ONB, json={"platformName": "Refused Repo", "slug": unique("norepo"), "tier": "starter"},
                             headers=user.headers)
    assert resp.status_code == 201, resp.text
    session = resp.json()
    repo = _step(session, "setup_repo")
    assert repo["status"] == "failed" and "HTTP 404 PLATFORM_NOT_FOUND" in repo["error"], session
    assert session["status"] == "failed"
    assert await OnboardingService(core.context("registry")).resume_waiting() == 0
    assert refuses.calls == 1
