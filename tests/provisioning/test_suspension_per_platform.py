"""Suspension follows the platform a request addresses, not the session's active platform (issue 10,
item 4): through the gateway on both backends, and in the services themselves when a request reaches
them without the gateway's check (a status the gateway could not read fails open)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, Identity
from tests.iam.conftest import bootstrap_operator
from tests.provisioning.conftest import PROV
from tests.provisioning.fakes import FakeCloud

P = "/api/v1/platforms"
IAM = "/api/v1/iam"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # No session cache: the switch of active platform shows at once (the attacker only waited for it).
    return make_settings(job_backoff_base_s=0.01, worker_poll_interval_s=0.02, auth_cache_ttl_s=0)


def _slug() -> str:
    return "s-" + uuid.uuid4().hex[:10]


async def _user(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    resp = await client.post(f"{IAM}/api/auth/sign-up/email", json={
        "email": f"{name}-{uuid.uuid4().hex[:6]}@example.com", "password": "correct-horse-9", "name": name})
    assert resp.status_code == 200, resp.text
    client.cookies.clear()
    return resp.json()["user"]["id"], {"Authorization": f"Bearer {resp.json()['token']}"}


async def _active_platform(client: httpx.AsyncClient, svc: dict[str, str], owner_id: str) -> str:
    resp = await client.post(P, json={"name": "Acme", "slug": _slug(), "ownerUserId": owner_id}, headers=svc)
    assert resp.status_code == 201, resp.text
    pid = str(resp.json()["id"])
    for action in ("bootstrap", "complete"):
        assert (await client.post(f"{P}/{pid}/lifecycle", json={"action": action}, headers=svc)).status_code == 200
    member = await client.post(f"{IAM}/api/nno/platform-members", headers=svc,
                               json={"platformId": pid, "userId": owner_id, "role": ROLE_PLATFORM_ADMIN})
    assert member.status_code in (200, 201), member.text
    return pid


async def _writes(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> list[httpx.Response]:
    """Writes that address `pid` by path, by body and by query."""
    return [
        await client.patch(f"{P}/{pid}", json={"name": "Renamed"}, headers=headers),
        await client.post(f"{P}/{pid}/tenants", json={"name": "T", "slug": _slug()}, headers=headers),
        await client.post(f"{PROV}/provision/stack/activate", json={"platformId": pid, "stackId": "stack00001"},
                          headers=headers),
        await client.post(f"{IAM}/api/nno/apikey", json={"name": "k", "platformId": pid}, headers=headers),
        await client.get(f"{PROV}/provision/jobs", params={"platformId": pid}, headers=headers),
    ]


def _suspended(resp: httpx.Response) -> None:
    assert resp.status_code == 451, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    assert resp.json()["error"]["code"] == "PLATFORM_SUSPENDED"


async def _jobs(core: Core) -> int:
    from sqlalchemy import func, select

    from nno.provisioning.models import ProvisionJob

    async with core.context("provisioning").db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(ProvisionJob)) or 0)


async def test_switching_the_active_platform_does_not_reopen_a_suspended_one(
        client: httpx.AsyncClient, core: Core, fake: FakeCloud, service_headers: dict[str, str]) -> None:
    owner_id, owner = await _user(client, "owner")
    suspended, other = await _active_platform(client, service_headers, owner_id), \
        await _active_platform(client, service_headers, owner_id)
    other_key = await client.post(f"{IAM}/api/nno/apikey", json={"name": "b", "platformId": other}, headers=owner)
    assert other_key.status_code == 201, other_key.text
    assert (await client.post(f"{P}/{suspended}/lifecycle", json={"action": "suspend"},
                              headers=service_headers)).status_code == 200
    switched = await client.post(f"{IAM}/api/nno/session/active-platform", json={"platformId": other},
                                 headers=owner)
    assert switched.status_code == 200 and switched.json()["platformId"] == other
    jobs_before = await _jobs(core)

    for resp in await _writes(client, owner, suspended):
        _suspended(resp)
    # The key of the owner's other platform, naming the suspended one in the body.
    _suspended(await client.post(f"{PROV}/provision/stack/activate", headers={"x-api-key": other_key.json()["key"]},
                                 json={"platformId": suspended, "stackId": "stack00001"}))
    assert (await client.get(f"{P}/{suspended}", headers=service_headers)).json()["name"] == "Acme"
    assert await _jobs(core) == jobs_before
    # The owner's other platform is not affected.
    assert (await client.patch(f"{P}/{other}", json={"name": "Fine"}, headers=owner)).status_code == 200

    # Operators and services still act on it, and restore it; then its owner may write again.
    operator = await bootstrap_operator(client, service_headers, f"root-{uuid.uuid4().hex[:6]}@nno.localhost")
    assert (await client.patch(f"{P}/{suspended}", json={"name": "By operator"},
                               headers=operator.headers)).status_code == 200
    assert (await client.patch(f"{P}/{suspended}", json={"name": "By service"},
                               headers=service_headers)).status_code == 200
    assert (await client.post(f"{P}/{suspended}/lifecycle", json={"action": "restore"},
                              headers=operator.headers)).status_code == 200
    assert (await client.patch(f"{P}/{suspended}", json={"name": "Back"}, headers=owner)).status_code == 200


async def test_services_refuse_writes_on_a_suspended_platform_themselves(
        client: httpx.AsyncClient, core: Core, fake: FakeCloud, service_headers: dict[str, str]) -> None:
    owner_id, owner = await _user(client, "owner")
    pid, other = await _active_platform(client, service_headers, owner_id), \
        await _active_platform(client, service_headers, owner_id)
    assert (await client.post(f"{P}/{pid}/lifecycle", json={"action": "suspend"},
                              headers=service_headers)).status_code == 200
    # As if the gateway had let the request through (its status lookup fails open): the owner's own
    # session identity, its active platform the other one.
    session = Identity(auth_type="session", user_id=owner_id, role=ROLE_PLATFORM_ADMIN, platform_id=other)
    headers = {**session.to_headers(), **owner}
    registry, provisioning, iam = (core.bindings.get(n) for n in ("registry", "provisioning", "iam"))
    assert registry is not None and provisioning is not None and iam is not None
    answers = [
        await registry.request("PATCH", f"/{pid}", json={"name": "Renamed"}, headers=headers),
        await registry.request("POST", f"/{pid}/tenants", json={"name": "T", "slug": _slug()}, headers=headers),
        await registry.request("POST", f"/{pid}/lifecycle", json={"action": "cancel"}, headers=headers),
        await provisioning.request("POST", "/provision/stack/activate", headers=headers,
                                   json={"platformId": pid, "stackId": "stack00001"}),
        await iam.request("POST", "/api/nno/apikey", json={"name": "k", "platformId": pid}, headers=headers),
    ]
    for answer in answers:
        assert answer.status == 451, answer.body
        assert answer.json()["error"]["code"] == "PLATFORM_SUSPENDED"
    after = (await client.get(f"{P}/{pid}", headers=service_headers)).json()
    assert after["name"] == "Acme" and after["status"] == "suspended"
    # Reads still work for the owner at the service (the gateway's 451 covers them for users).
    assert (await registry.request("GET", f"/{pid}", headers=headers)).status == 200


async def test_another_platforms_member_and_key_cannot_reach_these_routes(
        client: httpx.AsyncClient, core: Core, fake: FakeCloud, service_headers: dict[str, str]) -> None:
    owner_id, _ = await _user(client, "owner")
    stranger_id, stranger = await _user(client, "stranger")
    pid = await _active_platform(client, service_headers, owner_id)
    theirs = await _active_platform(client, service_headers, stranger_id)
    key = await client.post(f"{IAM}/api/nno/apikey", json={"name": "s", "platformId": theirs}, headers=stranger)
    jobs_before = await _jobs(core)
    for headers in (stranger, {"x-api-key": key.json()["key"]}):
        patched, tenant, activation, made_key, jobs = await _writes(client, headers, pid)
        for resp in (patched, tenant):
            assert resp.status_code == 404, resp.text
        for resp in (activation, made_key, jobs):
            assert resp.status_code == 403, resp.text
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json()["name"] == "Acme"
    assert await _jobs(core) == jobs_before
