"""The tenants page lists the tenants whose organization is not yet on the platform's auth worker,
with a Retry button (htmx, CSRF) for those that failed for good; only for the platform's admins."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from nno.core import Core
from tests.conftest import SERVICE_KEY
from tests.console.test_tenant_orgs import _retype_org, dispatcher, outbox
from tests.d1sql import d1_rowcount, d1_rows
from tests.portal.conftest import Browser, add_member, user_id

SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}


async def test_failed_organizations_are_shown_and_retried_from_the_tenants_page(
        core: Core, client: httpx.AsyncClient, browser_factory: Callable[[], Browser]) -> None:
    owner = browser_factory()
    await owner.sign_up("owner@example.com")
    pid = await owner.onboard("Outbox Co", "outbox-co")
    await dispatcher(core).stop()  # deliveries happen when this test drains, not in the background
    made = await client.post(f"/api/v1/platforms/{pid}/tenants", json={"name": "Clash", "slug": "clash"},
                             headers=SERVICE)
    tenant = made.json()["id"]
    assert len(await outbox(core, tenant)) == 1  # in flight, not tried yet: not news
    page = await owner.get(f"/platforms/{pid}/tenants")
    assert page.status_code == 200 and "Organizations not yet on the auth worker" not in page.text
    await dispatcher(core).drain()
    page = await owner.get(f"/platforms/{pid}/tenants")
    assert page.status_code == 200 and "Organizations not yet on the auth worker" not in page.text

    # The organization stops being the tenant's: the next delivery fails for good.
    await _retype_org(core, pid, tenant)
    await client.patch(f"/api/v1/platforms/{pid}/tenants/{tenant}", json={"name": "Clash 2"}, headers=SERVICE)
    await dispatcher(core).drain()
    [row] = await outbox(core, tenant)
    page = await owner.get(f"/platforms/{pid}/tenants")
    assert "Organizations not yet on the auth worker" in page.text
    assert f'data-outbox-row="{row.id}"' in page.text and "NOT_A_TENANT_ORG" in page.text
    action = f"/platforms/{pid}/tenant-orgs/{row.id}/retry"
    assert re.search(rf'<form method="post" action="{action}" hx-post="{action}" hx-target="#tenant-orgs"', page.text)

    # A plain member of the platform sees neither the platform nor the section.
    member = browser_factory()
    await member.sign_up("member@example.com")
    await add_member(client, pid, await user_id(client, member))
    assert "Organizations not yet" not in (await member.get(f"/platforms/{pid}/tenants")).text
    refused = await member.post(action, headers={"HX-Request": "true"})
    assert refused.status_code == 404
    assert (await outbox(core, tenant))[0].status == "failed"

    # Without the CSRF token the retry is refused.
    forged = await owner.http.post(action, data={})
    assert forged.status_code == 403
    assert (await outbox(core, tenant))[0].status == "failed"

    # The cause fixed, the owner's Retry (as htmx sends it) puts the row back and it is delivered.
    cloud = core.context("edge").extras["cloud"]
    assert await d1_rowcount(cloud, f"{pid}-default-auth-db",
                             "UPDATE organizations SET org_type = 'tenant' WHERE id = :o", {"o": tenant}) == 1
    fragment = await owner.http.post(action, headers={"HX-Request": "true", "X-CSRF-Token": owner.csrf})
    assert fragment.status_code == 200, fragment.text
    assert fragment.text.lstrip().startswith('<section id="tenant-orgs"') and "<html" not in fragment.text
    await dispatcher(core).drain()
    assert await outbox(core, tenant) == []
    names = await d1_rows(cloud, f"{pid}-default-auth-db", "SELECT name FROM organizations WHERE id = :o",
                          {"o": tenant})
    assert [r[0] for r in names] == ["Clash 2"]
    assert "Organizations not yet on the auth worker" not in (await owner.get(f"/platforms/{pid}/tenants")).text
