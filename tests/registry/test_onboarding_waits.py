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


async def _onboard_with(core: Core, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]],
                        binding: Down, name: str) -> tuple[User, dict[str, Any]]:
    """An onboarding started while `binding` stands in for its service; the resumer asks every 50 ms."""
    resumer = OnboardingResumer.of(core.context("registry"))
    resumer.first_delay_s = resumer.max_delay_s = 0.05
    core.bindings.add(binding)  # type: ignore[arg-type]
    slug = unique(name.split()[0].lower())
    user = await make_user(slug)
    resp = await client.post(ONB, json={"platformName": name, "slug": slug, "tier": "starter"}, headers=user.headers)
    assert resp.status_code == 201, resp.text
    return user, resp.json()


async def _poll(client: httpx.AsyncClient, user: User, session: dict[str, Any],
                done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The session, read every 50 ms until `done` says so (at most 30 s)."""
    current: dict[str, Any] = {}
    for _ in range(600):
        current = (await client.get(f"{ONB}/{session['id']}", headers=user.headers)).json()
        if done(current):
            break
        await asyncio.sleep(0.05)
    return current


async def test_a_step_waiting_on_provisioning_resumes_once_it_answers(
        core: Core, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]]) -> None:
    real = core.bindings.get("provisioning")
    assert real is not None
    down = Down("provisioning")
    user, session = await _onboard_with(core, client, make_user, down, "Patient Co")
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
    final = await _poll(client, user, session, lambda now: _step(now, "verify")["status"] == "completed")
    assert final["provisionJobId"] and _step(final, "provision_infra")["status"] == "completed", final
    assert (await client.get(f"{P}/{session['platformId']}", headers=user.headers)).json()["status"] == "active"


async def test_provisioning_refusing_the_job_still_fails_the_step(
        core: Core, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]]) -> None:
    """Only silence (or a 5xx) is waited out: a refusal is an answer."""

    class Refuses(Down):
        async def request(self, method: str, path: str, **_: Any) -> BindingResponse:
            return BindingResponse(422, {}, b'{"error":{"code":"VALIDATION_ERROR","message":"no"}}')

    _, session = await _onboard_with(core, client, make_user, Refuses("provisioning"), "Refused Co")
    assert _step(session, "provision_infra")["status"] == "failed"


@pytest.mark.parametrize("status", [None, 503])
async def test_setup_repo_waits_for_the_cli_service_and_the_session_completes_once_it_answers(
        core: Core, client: httpx.AsyncClient, make_user: Callable[..., Awaitable[User]], status: int | None) -> None:
    real = core.bindings.get("cli")
    assert real is not None
    down = Down("cli", status)
    user, session = await _onboard_with(core, client, make_user, down, "Repoless Co")
    repo = _step(session, "setup_repo")
    assert repo["status"] == "pending" and repo["note"].startswith(NOTE_CLI_RETRYING), session
    assert session["status"] != "failed"
    # asked again in the background while it stays down; the platform goes on
    waiting = await _poll(client, user, session,
                          lambda now: down.calls >= 3 and _step(now, "verify")["status"] == "completed")
    assert down.calls >= 3 and _step(waiting, "verify")["status"] == "completed", waiting
    assert _step(waiting, "setup_repo")["status"] == "pending" and waiting["status"] == "in_progress", waiting

    core.bindings.add(real)  # the CLI Service comes up: it makes the repository, whose build deploys
    final = await _poll(client, user, session, lambda now: now["status"] != "in_progress")
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
    _, session = await _onboard_with(core, client, make_user, refuses, "Refused Repo")
    repo = _step(session, "setup_repo")
    assert repo["status"] == "failed" and "HTTP 404 PLATFORM_NOT_FOUND" in repo["error"], session
    assert session["status"] == "failed"
    assert await OnboardingService(core.context("registry")).resume_waiting() == 0
    assert refuses.calls == 1
