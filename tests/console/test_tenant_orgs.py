"""Registry tenants become organizations on their platform's own auth Worker (outbox + dispatcher),
shown in the shell's tenant switcher; feature pages inside the shell's frame; the ShellContext key
of one platform never fits another's."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from nno.console.keys import platform_keys
from nno.core import Core
from nno.kernel.clock import now_ms
from nno.kernel.config import Settings
from nno.registry.tenant_orgs import FAILED, PENDING, TenantOrgDispatcher, TenantOrgOutbox
from nno.sdk.definition import ShellContext
from nno.sdk.shell import sign_shell_context
from tests.console.test_shell_edge import csrf, post_form, signed_up
from tests.d1sql import d1_rowcount, d1_rows
from tests.features.conftest import At, activate, at, job, prove_address, provisioned_platform

__all__ = ["at"]


def service_token(core: Core, pid: str) -> dict[str, str]:
    from nno.iam import service_tokens

    token, _ = service_tokens.mint(core.settings, subject="test", audience=f"auth:{pid}", ttl_s=60)
    return {"Authorization": f"Bearer {token}"}


async def make_admin(at: At, core: Core, pid: str, email: str) -> None:
    await prove_address(core, pid, email)  # only proven accounts are made platform-admin
    resp = await at(f"auth.svc.default.{pid}.nno.localhost").put(
        f"/api/nno/users/{email}/role", json={"role": "platform-admin"}, headers=service_token(core, pid))
    assert resp.status_code == 200, resp.text


async def org_ids(at: At, core: Core, pid: str) -> set[str]:
    """The organizations in the platform's auth D1 (read as an operator of the machine would)."""
    cloud = core.context("edge").extras["cloud"]
    return {row[0] for row in await d1_rows(cloud, f"{pid}-default-auth-db", "SELECT id FROM organizations")}


async def outbox(core: Core, tenant_id: str) -> list[TenantOrgOutbox]:
    async with core.context("registry").db.session() as s:
        return list((await s.execute(select(TenantOrgOutbox).where(TenantOrgOutbox.tenant_id == tenant_id)))
                    .scalars().all())


def dispatcher(core: Core) -> TenantOrgDispatcher:
    return TenantOrgDispatcher.of(core.context("registry"))


async def test_registry_tenant_appears_in_the_switcher_and_follows_renames_and_deletes(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], at: At) -> None:
    pid, _ = await provisioned_platform(client, service_headers)
    other, _ = await provisioned_platform(client, service_headers)
    ada = await signed_up(at, pid, "ada@example.com")
    bob = await signed_up(at, pid, "bob@example.com")
    await make_admin(at, core, pid, "ada@example.com")

    # The request only records the need; the organization comes from the dispatcher.
    made = await client.post(f"/api/v1/platforms/{pid}/tenants", json={"name": "Green team", "slug": "green"},
                             headers=service_headers)
    assert made.status_code == 201, made.text
    tenant = made.json()["id"]
    await dispatcher(core).drain()
    assert await outbox(core, tenant) == []
    assert tenant in await org_ids(at, core, pid)
    linked = (await client.get(f"/api/v1/platforms/{pid}/tenants/{tenant}", headers=service_headers)).json()
    assert linked["orgId"] == tenant
    # Another platform's auth Worker never gets it, nor accepts this platform's service token.
    assert tenant not in await org_ids(at, core, other)
    theirs = at(f"auth.svc.default.{other}.nno.localhost")
    stolen = await theirs.put(f"/api/nno/tenant-orgs/{tenant}", json={"name": "x", "slug": "x"},
                              headers=service_token(core, pid))
    assert stolen.status_code in (401, 403), stolen.text
    mine = at(f"auth.svc.default.{pid}.nno.localhost")
    crossed = await mine.delete(f"/api/nno/tenant-orgs/{tenant}", headers=service_token(core, other))
    assert crossed.status_code in (401, 403), crossed.text
    assert tenant in await org_ids(at, core, pid)
    assert tenant not in await org_ids(at, core, other)
    # A session, even a platform-admin's, cannot use the Registry's route.
    session = ada.cookies.get("nno_session", domain=f".{pid}.nno.localhost")
    by_user = await at(f"auth.svc.default.{pid}.nno.localhost").delete(
        f"/api/nno/tenant-orgs/{tenant}", headers={"Authorization": f"Bearer {session}"})
    assert by_user.status_code == 403, by_user.text
    bad_id = await at(f"auth.svc.default.{pid}.nno.localhost").put(
        "/api/nno/tenant-orgs/NOT_AN_ID", json={"name": "x", "slug": "x"}, headers=service_token(core, pid))
    assert bad_id.status_code == 400 and bad_id.json()["error"]["code"] == "VALIDATION_ERROR"

    # The platform-admin sees it in the switcher, joins it and works in it; a plain user does not.
    page = await ada.get("/tenants", headers={"accept": "text/html"})
    assert f'data-joinable="{tenant}"' in page.text and "Green team" in page.text
    joined = await ada.post("/tenants", data={"organizationId": tenant, "join": "1", "next": "/",
                                              "csrf_token": csrf(page)})
    assert joined.status_code == 303, joined.text
    assert 'data-testid="tenant">Green team' in (await ada.get("/profile")).text
    assert "Green team" not in (await bob.get("/tenants", headers={"accept": "text/html"})).text
    # Joining is the auth Worker's decision, not the form's: Bob's forged join changes nothing.
    page = await bob.get("/tenants", headers={"accept": "text/html"})
    forged = await bob.post("/tenants", data={"organizationId": tenant, "join": "1", "next": "/",
                                              "csrf_token": csrf(page)})
    assert forged.status_code in (400, 403), forged.text
    assert "Green team" not in (await bob.get("/tenants", headers={"accept": "text/html"})).text

    # A rename in the Registry follows; a repeated delivery changes nothing more.
    renamed = await client.patch(f"/api/v1/platforms/{pid}/tenants/{tenant}", json={"name": "Teal team"},
                                 headers=service_headers)
    assert renamed.status_code == 200, renamed.text
    await dispatcher(core).drain()
    assert 'data-testid="tenant">Teal team' in (await ada.get("/profile")).text
    again = await dispatcher(core).client.put_tenant_org(pid, tenant, name="Teal team", slug="green")
    assert again["created"] is False and again["changed"] is False

    # A delete in the Registry removes the organization (and it is no one's tenant any more).
    gone = await client.delete(f"/api/v1/platforms/{pid}/tenants/{tenant}", headers=service_headers)
    assert gone.status_code == 200, gone.text
    await dispatcher(core).drain()
    assert tenant not in await org_ids(at, core, pid)
    assert 'data-testid="tenant">Choose a tenant' in (await ada.get("/profile")).text


async def test_a_tenant_made_before_the_auth_worker_gets_its_organization_once_it_is_there(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], at: At) -> None:
    slug = "p-" + uuid.uuid4().hex[:12]
    resp = await client.post("/api/v1/platforms", json={"name": "Late " + slug, "slug": slug}, headers=service_headers)
    pid = resp.json()["id"]
    # No auth Worker yet: the tenant is made at once all the same, and nothing is retried meanwhile.
    made = await client.post(f"/api/v1/platforms/{pid}/tenants", json={"name": "Early", "slug": "early"},
                             headers=service_headers)
    assert made.status_code == 201, made.text
    tenant = made.json()["id"]
    await dispatcher(core).drain()
    assert await outbox(core, tenant) == []

    done = await job(client, service_headers, "/platform", {"platformId": pid})
    assert done["status"] == "COMPLETED", done
    assert len(await outbox(core, tenant)) == 1  # recorded as the platform became active
    await dispatcher(core).drain()
    assert await outbox(core, tenant) == []
    assert tenant in await org_ids(at, core, pid)


async def test_a_worker_that_does_not_answer_is_retried_with_back_off(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], at: At) -> None:
    from nno.registry.auth_worker import AuthWorkerError

    pid, _ = await provisioned_platform(client, service_headers)
    await dispatcher(core).drain()
    real = dispatcher(core).client

    class Unreachable:
        async def put_tenant_org(self, *args: Any, **kwargs: Any) -> Any:
            raise AuthWorkerError("the auth Worker is not reachable", status=503, code="WORKER_UNAVAILABLE",
                                  retryable=True)

    dispatcher(core).client = Unreachable()  # type: ignore[assignment]
    try:
        made = await client.post(f"/api/v1/platforms/{pid}/tenants", json={"name": "Patient", "slug": "patient"},
                                 headers=service_headers)
        tenant = made.json()["id"]
        await dispatcher(core).drain()
        rows = await outbox(core, tenant)
        assert len(rows) == 1 and rows[0].status == PENDING and rows[0].attempts == 1
        assert rows[0].next_attempt_at > now_ms() and "not reachable" in (rows[0].last_error or "")
        await dispatcher(core).drain()  # not due yet: not tried again
        assert (await outbox(core, tenant))[0].attempts == 1
    finally:
        dispatcher(core).client = real
    await dispatcher(core).drain(now=rows[0].next_attempt_at + 1)
    assert await outbox(core, tenant) == []
    assert tenant in await org_ids(at, core, pid)


async def test_the_default_tenant_gets_its_organization_once_the_platform_is_active(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], at: At) -> None:
    # A platform never provisioned has no auth Worker: its default tenant records nothing to retry.
    slug = "p-" + uuid.uuid4().hex[:12]
    idle = (await client.post("/api/v1/platforms", json={"name": "Idle " + slug, "slug": slug},
                              headers=service_headers)).json()["id"]
    idle_default = (await client.get(f"/api/v1/platforms/{idle}/tenants", headers=service_headers)).json()["data"]
    assert len(idle_default) == 1 and await outbox(core, idle_default[0]["id"]) == []
    # Nor when moved to active by hand: no auth Worker is deployed to deliver to.
    for action in ("bootstrap", "complete"):
        moved = await client.post(f"/api/v1/platforms/{idle}/lifecycle", json={"action": action},
                                  headers=service_headers)
        assert moved.status_code == 200, moved.text
    assert await outbox(core, idle_default[0]["id"]) == []

    pid, default = await provisioned_platform(client, service_headers)
    other, other_default = await provisioned_platform(client, service_headers)
    await dispatcher(core).drain()
    assert await outbox(core, default) == []
    assert default in await org_ids(at, core, pid)
    assert default not in await org_ids(at, core, other)
    assert other_default in await org_ids(at, core, other)
    assert other_default not in await org_ids(at, core, pid)
    linked = (await client.get(f"/api/v1/platforms/{pid}/tenants/{default}", headers=service_headers)).json()
    assert linked["orgId"] == default

    # The platform-admin finds it in the switcher; the other platform's admin does not.
    name = linked["name"]
    ada = await signed_up(at, pid, "ada@example.com")
    await make_admin(at, core, pid, "ada@example.com")
    page = await ada.get("/tenants", headers={"accept": "text/html"})
    assert f'data-joinable="{default}"' in page.text and name in page.text
    eve = await signed_up(at, other, "eve@example.com")
    await make_admin(at, core, other, "eve@example.com")
    theirs = await eve.get("/tenants", headers={"accept": "text/html"})
    assert f'data-joinable="{default}"' not in theirs.text and f'data-joinable="{other_default}"' in theirs.text

    # Repeating the transition is a no-op, and a linked tenant is not recorded again.
    again = await client.post(f"/api/v1/platforms/{pid}/lifecycle", json={"action": "complete"},
                              headers=service_headers)
    assert again.status_code == 200, again.text
    assert await outbox(core, default) == []


async def _failed_for_good(core: Core, client: httpx.AsyncClient, service_headers: dict[str, str],
                           at: At) -> tuple[str, str, TenantOrgOutbox]:
    """A tenant whose organization was delivered, then retyped on the Worker (NNO never overwrites an
    organization that is not a tenant's), then renamed: (platform, tenant, its failed row)."""
    pid, _ = await provisioned_platform(client, service_headers)
    made = await client.post(f"/api/v1/platforms/{pid}/tenants", json={"name": "Clash", "slug": "clash"},
                             headers=service_headers)
    tenant = made.json()["id"]
    await dispatcher(core).drain()
    assert tenant in await org_ids(at, core, pid)
    await _retype_org(core, pid, tenant)
    renamed = await client.patch(f"/api/v1/platforms/{pid}/tenants/{tenant}", json={"name": "Clash 2"},
                                 headers=service_headers)
    assert renamed.status_code == 200
    await dispatcher(core).drain()
    [row] = await outbox(core, tenant)
    return pid, tenant, row


async def test_a_refusal_that_cannot_pass_is_marked_failed(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], at: At) -> None:
    _, tenant, row = await _failed_for_good(core, client, service_headers, at)
    assert row.status == FAILED
    assert row.last_error and "409 NOT_A_TENANT_ORG" in row.last_error
    await dispatcher(core).drain(now=now_ms() + 3_600_000)  # a failed row is not tried again
    assert (await outbox(core, tenant))[0].attempts == row.attempts


async def _retype_org(core: Core, pid: str, org_id: str) -> None:
    cloud = core.context("edge").extras["cloud"]
    assert await d1_rowcount(cloud, f"{pid}-default-auth-db",
                             "UPDATE organizations SET org_type = 'workspace' WHERE id = :o", {"o": org_id}) == 1


def _context_of(token: str) -> dict[str, Any]:
    payload = token.split(".", 1)[0]
    body: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return body


async def test_feature_pages_draw_the_shell_frame_and_only_their_platform_key_fits(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], at: At) -> None:
    a, tenant_a = await provisioned_platform(client, service_headers)
    b, tenant_b = await provisioned_platform(client, service_headers)
    for pid, tenant in ((a, tenant_a), (b, tenant_b)):
        assert (await activate(client, service_headers, pid, tenant, "tasks"))["status"] == "COMPLETED"
    ada = await signed_up(at, a, "ada@example.com")
    assert (await post_form(ada, "/tenants", {"name": "Blue team", "next": "/"})).status_code == 303
    home = await ada.get("/", headers={"accept": "text/html"})
    assert 'data-testid="platform-icon"' in home.text and 'rel="icon" href="/_shell/static/icon.svg"' in home.text
    icon = await ada.get("/_shell/static/icon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")

    opened = await ada.get("/f/tasks", headers={"accept": "text/html"})
    page = await ada.get(opened.headers["location"], headers={"accept": "text/html"})
    assert page.status_code == 200
    # The shell's frame: its header (icon, name, tenant) and the sidebar it composed for Ada.
    assert 'data-testid="shell-sidebar"' in page.text and f'data-shell="{a}"' in page.text
    assert f'href="http://{a}.nno.localhost:8787/f/tasks"' in page.text
    assert f'src="http://{a}.nno.localhost:8787/_shell/static/icon.svg"' in page.text
    assert 'data-testid="tenant">Blue team' in page.text
    assert "/f/settings" not in page.text  # only the features Ada may open

    # A context signed with platform A's key, even claiming B and B's own user, is refused by B.
    bea = await signed_up(at, b, "bea@example.com")
    assert (await post_form(bea, "/tenants", {"name": "Red team", "next": "/"})).status_code == 303
    opened_b = await bea.get("/f/tasks", headers={"accept": "text/html"})
    genuine = bea.cookies.get("nno_shell", domain=f".{b}.nno.localhost")
    assert genuine
    claims = ShellContext.model_validate(_context_of(genuine)["ctx"])
    forged = sign_shell_context(platform_keys(core.settings, a)[0], claims)
    bea.cookies.set("nno_shell", forged, domain=f".{b}.nno.localhost")
    refused = await bea.get(opened_b.headers["location"], headers={"accept": "text/html"})
    assert refused.status_code == 200 and "data-shell=" not in refused.text
    # ... while the same claims signed with B's own key are believed (the control).
    bea.cookies.set("nno_shell", sign_shell_context(platform_keys(core.settings, b)[0], claims),
                    domain=f".{b}.nno.localhost")
    believed = await bea.get(opened_b.headers["location"], headers={"accept": "text/html"})
    assert f'data-shell="{b}"' in believed.text
    # A tampered context (the tenant changed, the signature kept) is refused.
    sig = genuine.split(".", 1)[1]
    body = _context_of(genuine)
    body["ctx"]["tenantId"] = "someoneelse"
    edited = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()
    bea.cookies.set("nno_shell", f"{edited}.{sig}", domain=f".{b}.nno.localhost")
    tampered = await bea.get(opened_b.headers["location"], headers={"accept": "text/html"})
    assert "data-shell=" not in tampered.text
    assert re.search(r"<main", tampered.text)


async def test_platforms_active_before_the_outbox_get_organizations_for_their_tenants(settings: Settings) -> None:
    """The backfill revision: a live top-level tenant without an organization, on a platform whose
    default stack (the auth Worker's) is active, is owed one; nothing else is."""
    from pathlib import Path

    import nno.registry
    from nno.kernel.db import Database
    from nno.kernel.migrations import upgrade
    from nno.registry.models import Entity, Platform, Stack

    migrations = Path(nno.registry.__file__).parent / "migrations"
    db = Database.for_service(settings, "registry")
    try:
        await upgrade(db, migrations, "3d8b6f0c2a71")
        t = 1_700_000_000_000
        owed: set[str] = set()
        async with db.session() as s:
            for pid, status, stack_status in (("pactive001", "active", "active"),
                                              ("psusp00001", "suspended", "active"),
                                              ("pnostack01", "active", "pending"),
                                              ("pcancel001", "cancelled", "active")):
                s.add(Platform(id=pid, name=pid, slug=pid, status=status, created_at=t, updated_at=t))
                await s.flush()
                tenants = {kind: Entity(id=f"{pid[:6]}{kind}", platform_id=pid, type="tenant", name=kind, slug=kind,
                                        created_at=t, updated_at=t) for kind in ("dflt", "link", "gone", "subt")}
                tenants["link"].org_id = "org-already"
                tenants["gone"].deleted_at = t
                s.add_all([tenants["dflt"], tenants["link"], tenants["gone"]])
                await s.flush()
                tenants["subt"].parent_id, tenants["subt"].type = tenants["dflt"].id, "sub_tenant"
                s.add(tenants["subt"])
                s.add(Stack(platform_id=pid, id="default", tenant_id=tenants["dflt"].id, name="Default",
                            is_default=True, status=stack_status, created_at=t, updated_at=t))
                if status != "cancelled" and stack_status == "active":
                    owed.add(tenants["dflt"].id)
        await upgrade(db, migrations)
        async with db.session() as s:
            rows = (await s.execute(select(TenantOrgOutbox))).scalars().all()
        assert {r.tenant_id for r in rows} == owed == {"pactivdflt", "psusp0dflt"}
        assert all(r.status == "pending" and r.attempts == 0 for r in rows)
    finally:
        await db.dispose()


async def test_a_retried_failed_row_is_delivered_again(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], at: At) -> None:
    pid, tenant, row = await _failed_for_good(core, client, service_headers, at)
    assert row.status == FAILED
    # The cause is fixed (the organization is the tenant's again); the operator retries the row.
    cloud = core.context("edge").extras["cloud"]
    assert await d1_rowcount(cloud, f"{pid}-default-auth-db",
                             "UPDATE organizations SET org_type = 'tenant' WHERE id = :o", {"o": tenant}) == 1
    retried = await client.post(f"/api/v1/platforms/{pid}/tenant-orgs/{row.id}/retry", headers=service_headers)
    assert retried.status_code == 200, retried.text
    await dispatcher(core).drain()
    assert await outbox(core, tenant) == []
    names = await d1_rows(cloud, f"{pid}-default-auth-db", "SELECT name FROM organizations WHERE id = :o",
                          {"o": tenant})
    assert [r[0] for r in names] == ["Clash 2"]
    listed = await client.get(f"/api/v1/platforms/{pid}/tenant-orgs", headers=service_headers)
    assert listed.status_code == 200 and listed.json()["data"] == []
