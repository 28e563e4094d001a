"""On a per-platform auth app, a platform-admin has org-admin rights in every organization of that
platform (list them all, read and manage members and invitations), as NNO operators have on NNO's own
IAM; plain users keep seeing only their own organizations; owner-only acts stay with owners; every
change is audited with the right it used; nothing carries over to another platform's app or to NNO's
IAM. The apps are built directly with create_auth_app on fresh databases of the backend under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from nno.core import Core
from nno.iam import service_tokens
from nno.iam.models import AuditEvent
from nno.iam.platform_roles import platform_audience
from nno.kernel.config import Settings
from nno.kernel.db import Database
from tests.iam.conftest import (
    IAM,
    Account,
    assert_error,
    bootstrap_operator,
    iam_db,
    magic_sign_in,
    platform_auth_client,
    platform_auth_db,
    rows,
    sign_up,
)

PID, OTHER_PID = "k3m9p2xw7q", "a1b2c3d4e5"
ORG = "/api/auth/organization"


class Platform:
    def __init__(self, pid: str, db: Database, client: httpx.AsyncClient) -> None:
        self.pid, self.db, self.client = pid, db, client


PlatformFactory = Callable[[str], Awaitable[Platform]]


@pytest.fixture
async def platforms(tmp_path: Path, settings: Settings) -> AsyncIterator[PlatformFactory]:
    """Builds the auth app of a platform on a database of its own (SQLite file embedded, a schema of
    its own in the test's PostgreSQL database scaled), as the local cloud does."""
    async with AsyncExitStack() as stack:
        async def make(pid: str) -> Platform:
            db = await stack.enter_async_context(platform_auth_db(settings, tmp_path, pid))
            client = await stack.enter_async_context(platform_auth_client(db, settings, pid))
            return Platform(pid, db, client)

        yield make


@pytest.fixture
async def platform(platforms: PlatformFactory) -> Platform:
    return await platforms(PID)


def nno_token(settings: Settings, platform_id: str = PID) -> dict[str, str]:
    token = service_tokens.mint(settings, subject="provisioning", audience=platform_audience(platform_id),
                                ttl_s=60)[0]
    return {"Authorization": f"Bearer {token}"}


async def make_platform_admin(p: Platform, settings: Settings, email: str) -> Account:
    admin = await magic_sign_in(p.client, p.db, email, prefix="")  # only a proven address is promoted
    resp = await p.client.put(f"/api/nno/users/{admin.id}/role", headers=nno_token(settings, p.pid),
                              json={"role": "platform-admin"})
    assert resp.status_code == 200, resp.text
    return admin


async def create_org(c: httpx.AsyncClient, owner: Account, slug: str) -> str:
    resp = await c.post(f"{ORG}/create", headers=owner.headers, json={"name": slug.title(), "slug": slug})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def member_emails(c: httpx.AsyncClient, who: Account, org_id: str) -> list[str]:
    resp = await c.get(f"{ORG}/list-members", headers=who.headers, params={"organizationId": org_id})
    assert resp.status_code == 200, resp.text
    return sorted(m["user"]["email"] for m in resp.json()["members"])


async def org_audit(db: Database, org_id: str) -> list[tuple[str, str | None, str | None, dict[str, Any]]]:
    """(action, actorId, platformId, data) of the organization's audit rows, oldest first."""
    async with db.session() as s:
        found = (await s.execute(select(AuditEvent).where(AuditEvent.org_id == org_id)
                                 .order_by(AuditEvent.timestamp, AuditEvent.id))).scalars().all()
    return [(e.action, e.actor_id, e.platform_id, e.data or {}) for e in found]


async def test_platform_admin_lists_every_org_and_manages_its_members(platform: Platform,
                                                                      settings: Settings) -> None:
    c = platform.client
    admin = await make_platform_admin(platform, settings, "admin@example.com")
    ann = await sign_up(c, "ann@example.com", prefix="")
    ben = await sign_up(c, "ben@example.com", prefix="")
    bob = await sign_up(c, "bob@example.com", prefix="")
    org_a, org_b = await create_org(c, ann, "tenant-a"), await create_org(c, ben, "tenant-b")

    # Every organization of the platform, though the admin belongs to none; filters still apply.
    listed = await c.get("/api/nno/organizations", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert [o["id"] for o in listed.json()["data"]] == [org_a, org_b]
    tenants = await c.get("/api/nno/organizations", headers=admin.headers, params={"orgType": "tenant"})
    assert [o["id"] for o in tenants.json()["data"]] == [org_a, org_b]
    assert (await c.get("/api/nno/organizations", headers=admin.headers,
                        params={"orgType": "nno-operator"})).json()["data"] == []
    # Better Auth's own list stays "the organizations I belong to", for everyone.
    assert (await c.get(f"{ORG}/list", headers=admin.headers)).json() == []

    # Read an organization it does not belong to.
    assert await member_emails(c, admin, org_a) == ["ann@example.com"]
    full = await c.get(f"{ORG}/get-full-organization", headers=admin.headers,
                       params={"organizationSlug": "tenant-a"})
    assert full.status_code == 200 and full.json()["id"] == org_a

    # Invite, list and cancel invitations; add, re-role and remove members there.
    invited = await c.post(f"{ORG}/invite-member", headers=admin.headers,
                           json={"organizationId": org_a, "email": "dora@example.com", "role": "member"})
    assert invited.status_code == 201, invited.text
    pending = await c.get(f"{ORG}/list-invitations", headers=admin.headers, params={"organizationId": org_a})
    assert [i["email"] for i in pending.json()] == ["dora@example.com"]
    canceled = await c.post(f"{ORG}/cancel-invitation", headers=admin.headers,
                            json={"invitationId": invited.json()["id"]})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    added = await c.post(f"{ORG}/add-member", headers=admin.headers,
                         json={"organizationId": org_a, "userId": bob.id, "role": "member"})
    assert added.status_code == 201, added.text
    promoted = await c.post(f"{ORG}/update-member-role", headers=admin.headers,
                            json={"organizationId": org_a, "memberId": added.json()["id"], "role": "admin"})
    assert promoted.status_code == 200, promoted.text
    assert await member_emails(c, admin, org_a) == ["ann@example.com", "bob@example.com"]
    removed = await c.post(f"{ORG}/remove-member", headers=admin.headers,
                           json={"organizationId": org_a, "memberIdOrEmail": "bob@example.com"})
    assert removed.status_code == 200, removed.text
    assert await member_emails(c, ann, org_a) == ["ann@example.com"]

    # The rights of an org admin, not of an owner: no owner role handed out or taken, no delete.
    assert_error(await c.post(f"{ORG}/invite-member", headers=admin.headers,
                              json={"organizationId": org_a, "email": "eve@example.com", "role": "owner"}),
                 403, "YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION")
    assert_error(await c.post(f"{ORG}/remove-member", headers=admin.headers,
                              json={"organizationId": org_a, "memberIdOrEmail": "ann@example.com"}),
                 403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_MEMBER")
    assert_error(await c.post(f"{ORG}/delete", headers=admin.headers, json={"organizationId": org_b}),
                 403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_ORGANIZATION")
    assert len((await c.get("/api/nno/organizations", headers=admin.headers)).json()["data"]) == 2

    # Audited like any org action, naming the platform and the right used; the owner's own act does
    # not claim it.
    events = await org_audit(platform.db, org_a)
    # A set: rows written within the same millisecond have no defined order.
    assert len(events) == 6 and {(a, actor, pid, d.get("actingAs")) for a, actor, pid, d in events} == {
        ("org.create", ann.id, PID, None),
        ("invitation.create", admin.id, PID, "platform-admin"),
        ("invitation.cancel", admin.id, PID, "platform-admin"),
        ("member.add", admin.id, PID, "platform-admin"),
        ("member.update_role", admin.id, PID, "platform-admin"),
        ("member.remove", admin.id, PID, "platform-admin"),
    }
    data = {action: d for action, _, _, d in events}
    assert data["member.add"]["role"] == "member" and data["member.update_role"]["to"] == "admin"


async def test_plain_users_see_and_manage_only_their_own(platform: Platform, settings: Settings) -> None:
    c = platform.client
    ann = await sign_up(c, "ann@example.com", prefix="")
    carol = await sign_up(c, "carol@example.com", prefix="")
    mia = await sign_up(c, "mia@example.com", prefix="")
    org_a, org_c = await create_org(c, ann, "tenant-a"), await create_org(c, carol, "tenant-c")
    added = await c.post(f"{ORG}/add-member", headers=ann.headers,
                         json={"organizationId": org_a, "userId": mia.id, "role": "member"})
    assert added.status_code == 201
    before = await org_audit(platform.db, org_a)

    mine = await c.get("/api/nno/organizations", headers=carol.headers)
    assert [o["id"] for o in mine.json()["data"]] == [org_c]
    assert_error(await c.get("/api/nno/organizations"), 401, "UNAUTHORIZED")

    # An outsider: the organization does not exist for them.
    for resp in (
        await c.get(f"{ORG}/list-members", headers=carol.headers, params={"organizationId": org_a}),
        await c.get(f"{ORG}/get-full-organization", headers=carol.headers, params={"organizationId": org_a}),
        await c.get(f"{ORG}/list-invitations", headers=carol.headers, params={"organizationId": org_a}),
        await c.post(f"{ORG}/invite-member", headers=carol.headers,
                     json={"organizationId": org_a, "email": "x@example.com", "role": "member"}),
        await c.post(f"{ORG}/add-member", headers=carol.headers,
                     json={"organizationId": org_a, "userId": carol.id, "role": "admin"}),
        await c.post(f"{ORG}/remove-member", headers=carol.headers,
                     json={"organizationId": org_a, "memberIdOrEmail": "mia@example.com"}),
    ):
        assert_error(resp, 404, "ORGANIZATION_NOT_FOUND")
    # A plain member reads, but does not manage.
    assert await member_emails(c, mia, org_a) == ["ann@example.com", "mia@example.com"]
    assert_error(await c.post(f"{ORG}/invite-member", headers=mia.headers,
                              json={"organizationId": org_a, "email": "x@example.com", "role": "member"}),
                 403, "YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION")
    assert_error(await c.post(f"{ORG}/remove-member", headers=mia.headers,
                              json={"organizationId": org_a, "memberIdOrEmail": "ann@example.com"}),
                 403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_MEMBER")
    assert await member_emails(c, ann, org_a) == ["ann@example.com", "mia@example.com"]
    assert await org_audit(platform.db, org_a) == before


async def test_a_demoted_admin_loses_the_access_at_once(platform: Platform, settings: Settings) -> None:
    c = platform.client
    admin = await make_platform_admin(platform, settings, "admin@example.com")
    ann = await sign_up(c, "ann@example.com", prefix="")
    org_a = await create_org(c, ann, "tenant-a")
    assert await member_emails(c, admin, org_a) == ["ann@example.com"]
    down = await c.put(f"/api/nno/users/{admin.id}/role", headers=nno_token(settings), json={"role": "user"})
    assert down.status_code == 200, down.text
    # The same session, no longer admin: the organization is out of reach again.
    assert_error(await c.get(f"{ORG}/list-members", headers=admin.headers, params={"organizationId": org_a}),
                 404, "ORGANIZATION_NOT_FOUND")
    assert (await c.get("/api/nno/organizations", headers=admin.headers)).json() == {"data": []}


async def test_an_admin_of_one_platform_has_no_rights_on_another(platforms: PlatformFactory,
                                                                 settings: Settings) -> None:
    a, b = await platforms(PID), await platforms(OTHER_PID)
    admin_a = await make_platform_admin(a, settings, "admin@example.com")
    owner_b = await sign_up(b.client, "owner@example.com", prefix="")
    org_b = await create_org(b.client, owner_b, "tenant-b")

    # Platform A's session means nothing to platform B's app.
    assert_error(await b.client.get("/api/nno/organizations", headers=admin_a.headers), 401, "UNAUTHORIZED")
    assert_error(await b.client.get(f"{ORG}/list-members", headers=admin_a.headers,
                                    params={"organizationId": org_b}), 401, "UNAUTHORIZED")
    # The same person signed up on B is a plain user there.
    same_on_b = await sign_up(b.client, "admin@example.com", prefix="")
    assert (await b.client.get("/api/nno/organizations", headers=same_on_b.headers)).json() == {"data": []}
    assert_error(await b.client.get(f"{ORG}/list-members", headers=same_on_b.headers,
                                    params={"organizationId": org_b}), 404, "ORGANIZATION_NOT_FOUND")
    # And a service token for platform A is no authority on B.
    assert_error(await b.client.put(f"/api/nno/users/{same_on_b.id}/role", headers=nno_token(settings, PID),
                                    json={"role": "platform-admin"}), 403, "WRONG_AUDIENCE")


async def test_platform_admins_of_nno_iam_get_no_org_rights(client: httpx.AsyncClient, core: Core,
                                                            service_headers: dict[str, str]) -> None:
    """On NNO's own IAM only operators see every organization: a platform-admin (platform_members) gets
    nothing from it, nor does a `users.role` that says platform-admin (that column counts only on a
    per-platform app)."""
    await bootstrap_operator(client, service_headers)
    ann = await sign_up(client, "ann@example.com")
    pat = await sign_up(client, "pat@example.com")
    org = await client.post(f"{IAM}{ORG}/create", headers=ann.headers, json={"name": "A", "slug": "tenant-a"})
    assert org.status_code == 201
    upsert = await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers,
                               json={"platformId": PID, "userId": pat.id, "role": "platform-admin"})
    assert upsert.status_code in (200, 201), upsert.text
    async with iam_db(core).session() as s:
        await s.execute(text("UPDATE users SET role = 'platform-admin' WHERE id = :id"), {"id": pat.id})
    assert (await rows(core, "SELECT role FROM users WHERE id = :id", id=pat.id)) == [("platform-admin",)]

    assert (await client.get(f"{IAM}/api/nno/organizations", headers=pat.headers)).json() == {"data": []}
    assert_error(await client.get(f"{IAM}{ORG}/list-members", headers=pat.headers,
                                  params={"organizationId": org.json()["id"]}), 404, "ORGANIZATION_NOT_FOUND")
    assert_error(await client.post(f"{IAM}{ORG}/invite-member", headers=pat.headers,
                                   json={"organizationId": org.json()["id"], "email": "x@example.com",
                                         "role": "member"}), 404, "ORGANIZATION_NOT_FOUND")


async def test_auth_app_audit_rows_name_their_platform(platform: Platform) -> None:
    """Every act on a platform's auth app is on that platform: sign-ups and sign-ins say so too."""
    await sign_up(platform.client, "ann@example.com", prefix="")
    async with platform.db.session() as s:
        found = (await s.execute(text("SELECT DISTINCT platform_id FROM audit_log"))).scalars().all()
    assert found == [PID]
