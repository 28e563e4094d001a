"""The first-party `settings` and `members` features on a provisioned platform, through their hosts:
platform settings by platform-admins only, tenant settings by the organization's managers, checked
values; members listed, invited, re-roled and removed through the auth Worker's API as the user."""

from __future__ import annotations

import httpx

from nno.core import Core
from tests.features.conftest import At, activate, browser, prove_address, provisioned_platform, sign_up, use_org


async def _make_admin(at: At, client: httpx.AsyncClient, core: Core, pid: str, email: str) -> None:
    """Make `email` a platform-admin of pid's auth Worker as NNO would (a service token for it)."""
    from nno.iam import service_tokens

    token, _ = service_tokens.mint(core.settings, subject="test", audience=f"auth:{pid}", ttl_s=60)
    resp = await at(f"auth.svc.default.{pid}.nno.localhost").put(
        f"/api/nno/users/{email}/role", json={"role": "platform-admin"}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text


async def test_settings_platform_and_tenant(client: httpx.AsyncClient, service_headers: dict[str, str], at: At,
                                            core: Core) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    assert (await activate(client, h, pid, tenant, "settings"))["status"] == "COMPLETED"
    host = f"settings.svc.default.{pid}.nno.localhost"
    await sign_up(at, pid, "admin@example.com")
    await sign_up(at, pid, "owner@example.com")
    await prove_address(core, pid, "admin@example.com")  # only proven accounts are made platform-admin
    await _make_admin(at, client, core, pid, "admin@example.com")

    admin = await browser(at, host, "admin@example.com")
    await use_org(admin, "Admins")
    page = await admin.get("/")
    assert page.status_code == 200 and "Platform defaults" in page.text
    bad = await admin.post("/platform", data={"supportEmail": "nope", "timezone": "Mars/Base"})
    assert bad.status_code == 400 and "Support email must be an email address" in bad.text \
        and "Time zone must be" in bad.text
    ok = await admin.post("/platform", data={"displayName": "Acme", "timezone": "Europe/Paris",
                                             "brandColor": "#3366ff"})
    assert ok.status_code == 303

    owner = await browser(at, host, "owner@example.com")
    await use_org(owner, "Shop")
    assert (await owner.post("/platform", data={"displayName": "Hijack"})).status_code == 403
    assert (await owner.post("/tenant", data={"displayName": "Shop & Co", "locale": "fr-FR"})).status_code == 303
    effective = (await owner.get("/api/settings")).json()
    assert effective["effective"] == {"displayName": "Shop & Co", "timezone": "Europe/Paris",
                                      "brandColor": "#3366ff", "locale": "fr-FR"}
    assert effective["platform"]["displayName"] == "Acme"
    # Another organization sees the platform defaults, not Shop's values; clearing a value falls back.
    assert (await admin.get("/api/settings")).json()["effective"]["displayName"] == "Acme"
    assert (await owner.post("/tenant", data={"displayName": ""})).status_code == 303
    assert (await owner.get("/api/settings")).json()["effective"]["displayName"] == "Acme"
    page = await owner.get("/")
    assert "Shop &amp; Co" not in page.text and 'value="fr-FR"' in page.text


async def test_members_invite_role_remove(client: httpx.AsyncClient, service_headers: dict[str, str], at: At,
                                          core: Core) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    assert (await activate(client, h, pid, tenant, "members"))["status"] == "COMPLETED"
    host = f"members.svc.default.{pid}.nno.localhost"
    await sign_up(at, pid, "owner@example.com")
    await sign_up(at, pid, "sam@example.com")
    for email in ("owner@example.com", "sam@example.com"):  # invitations and admin need proven addresses
        await prove_address(core, pid, email)
    owner = await browser(at, host, "owner@example.com")
    await use_org(owner, "Crew")
    page = await owner.get("/")
    assert page.status_code == 200 and 'data-email="owner@example.com"' in page.text

    invited = await owner.post("/invite", data={"email": "sam@example.com", "role": "member"},
                               headers={"hx-request": "true"})
    assert invited.status_code == 200 and "Invitation sent to sam@example.com" in invited.text
    assert "sam@example.com (member)" in invited.text
    wrong = await owner.post("/invite", data={"email": "not-an-email", "role": "member"})
    assert wrong.status_code == 400 and "nno-error" in wrong.text

    sam = await browser(at, host, "sam@example.com")
    mine = await sam.get("/invitations")
    assert mine.status_code == 200 and "Accept" in mine.text
    invitation_id = mine.text.split('action="/invitations/')[1].split("/")[0]
    accepted = await sam.post(f"/invitations/{invitation_id}/accept")
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"
    sam_view = await sam.get("/")
    assert sam_view.status_code == 200 and 'data-email="sam@example.com"' in sam_view.text
    assert "Send invitation" not in sam_view.text  # a member reads; only managers invite
    assert (await sam.post("/invite", data={"email": "x@example.com", "role": "member"})).status_code == 403
    assert (await sam.get("/platform")).status_code == 403

    listing = await owner.get("/")
    member_id = listing.text.split('data-email="sam@example.com"')[1].split('action="/members/')[1].split("/")[0]
    assert (await owner.post(f"/members/{member_id}/role", data={"role": "admin"})).status_code == 303
    assert "Send invitation" in (await sam.get("/")).text  # admins manage members
    assert (await owner.post(f"/members/{member_id}/remove")).status_code == 303
    assert 'data-email="sam@example.com"' not in (await owner.get("/")).text

    # Platform admins see the platform page, the admins and the feature permission catalogue.
    await _make_admin(at, client, core, pid, "owner@example.com")
    plat = await owner.get("/platform")
    assert plat.status_code == 200 and "owner@example.com" in plat.text and "members:manage" in plat.text
    assert (await owner.post("/platform/role", data={"email": "sam@example.com", "role": "platform-admin"})
            ).status_code == 303
    assert "sam@example.com" in (await owner.get("/platform")).text
