"""Organizations, members and invitations; one organization's users cannot touch another's."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from nno.core import Core
from tests.iam.conftest import (
    IAM,
    add_member,
    assert_error,
    bootstrap_operator,
    create_org,
    iam_db,
    magic_sign_in,
    outbox,
    rows,
    sign_up,
)

ORG = f"{IAM}/api/auth/organization"


async def test_create_list_set_active_and_full(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, "alice@example.com")
    org = await create_org(client, alice, "acme", "Acme Inc")
    assert org["orgType"] == "tenant" and org["slug"] == "acme"
    listed = (await client.get(f"{ORG}/list", headers=alice.headers)).json()
    assert [(o["id"], o["role"]) for o in listed] == [(org["id"], "owner")]
    session = (await client.get(f"{IAM}/api/nno/session", headers=alice.headers)).json()
    assert session["activeOrganizationId"] == org["id"]  # a new org becomes the active one
    full = (await client.get(f"{ORG}/get-full-organization", headers=alice.headers)).json()
    assert full["id"] == org["id"] and [m["role"] for m in full["members"]] == ["owner"]
    by_slug = await client.get(f"{ORG}/get-full-organization", params={"organizationSlug": "acme"},
                               headers=alice.headers)
    assert by_slug.json()["id"] == org["id"]
    cleared = await client.post(f"{ORG}/set-active", headers=alice.headers, json={"organizationId": None})
    assert cleared.status_code == 200 and cleared.json() is None
    none_active = await client.get(f"{ORG}/get-full-organization", headers=alice.headers)
    assert none_active.status_code == 200 and none_active.json() is None  # Better Auth's answer
    again = await client.post(f"{ORG}/set-active", headers=alice.headers, json={"organizationSlug": "acme"})
    assert again.json()["id"] == org["id"]


async def test_org_validation_and_conflicts(client: httpx.AsyncClient, core: Core) -> None:
    alice = await sign_up(client, "a@example.com")
    await create_org(client, alice, "taken")
    assert_error(await client.post(f"{ORG}/create", headers=alice.headers, json={"name": "X", "slug": "taken"}),
                 400, "ORGANIZATION_SLUG_ALREADY_TAKEN")
    for body in ({"name": "", "slug": "ok"}, {"name": "x" * 101, "slug": "ok"}, {"name": "X", "slug": "Bad_Slug"},
                 {"name": "X", "slug": "a" * 64}, {"name": "X", "slug": "ok", "orgType": "galaxy"}):
        assert_error(await client.post(f"{ORG}/create", headers=alice.headers, json=body), 400, "VALIDATION_ERROR")
    # Only operators create nno-operator orgs.
    assert_error(await client.post(f"{ORG}/create", headers=alice.headers,
                                   json={"name": "Ops", "slug": "ops", "orgType": "nno-operator"}), 403)
    assert_error(await client.post(f"{ORG}/create", json={"name": "X", "slug": "anon"}), 401)
    assert len(await rows(core, "SELECT id FROM organizations")) == 1


async def test_nno_organizations_endpoint(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    alice = await sign_up(client, "alice@example.com")
    bob = await sign_up(client, "bob@example.com")
    url = f"{IAM}/api/nno/organizations"
    made = await client.post(url, headers=service_headers,
                             json={"name": "Tenant", "slug": "tenant-1", "ownerId": alice.id})
    assert made.status_code == 201 and made.json()["orgType"] == "tenant"
    assert_error(await client.post(url, headers=bob.headers,
                                   json={"name": "T", "slug": "tenant-2", "ownerId": alice.id}), 403)
    mine = await client.post(url, headers=bob.headers, json={"name": "T", "slug": "tenant-2", "ownerId": bob.id})
    assert mine.status_code == 201
    assert_error(await client.post(url, headers=service_headers,
                                   json={"name": "T", "slug": "tenant-3", "ownerId": "ghost"}), 404)
    every = (await client.get(url, headers=service_headers)).json()["data"]
    assert {o["slug"] for o in every} == {"tenant-1", "tenant-2"}
    bobs = (await client.get(url, headers=bob.headers)).json()["data"]
    assert [o["slug"] for o in bobs] == ["tenant-2"]


async def test_invitation_lifecycle(client: httpx.AsyncClient, core: Core) -> None:
    owner = await sign_up(client, "owner@example.com")
    org = await create_org(client, owner, "team")
    # Invitations are for accounts that proved their address (`test_invitation_trust`).
    invitee = await magic_sign_in(client, iam_db(core), "invitee@example.com")
    stranger = await magic_sign_in(client, iam_db(core), "stranger@example.com")
    inv = await client.post(f"{ORG}/invite-member", headers=owner.headers,
                            json={"email": "Invitee@example.com", "role": "admin", "organizationId": org["id"]})
    assert inv.status_code == 201, inv.text
    invitation = inv.json()
    assert invitation["status"] == "pending" and invitation["email"] == "invitee@example.com"
    mails = await outbox(core, "invitee@example.com")  # the sign-in link, then the invitation
    assert len(mails) == 2 and invitation["id"] in mails[1]
    assert_error(await client.post(f"{ORG}/invite-member", headers=owner.headers,
                                   json={"email": "invitee@example.com", "role": "admin",
                                         "organizationId": org["id"]}), 400,
                 "USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION")
    mine = (await client.get(f"{ORG}/list-user-invitations", headers=invitee.headers)).json()
    assert [i["id"] for i in mine] == [invitation["id"]]
    # Only the invitee can accept; to anyone else the invitation does not exist.
    assert_error(await client.post(f"{ORG}/accept-invitation", headers=stranger.headers,
                                   json={"invitationId": invitation["id"]}), 404, "INVITATION_NOT_FOUND")
    accepted = await client.post(f"{ORG}/accept-invitation", headers=invitee.headers,
                                 json={"invitationId": invitation["id"]})
    assert accepted.status_code == 200 and accepted.json()["member"]["role"] == "admin"
    assert_error(await client.post(f"{ORG}/accept-invitation", headers=invitee.headers,
                                   json={"invitationId": invitation["id"]}), 409, "INVITATION_NOT_PENDING")
    # The new admin can invite; the invited stranger rejects.
    inv2 = (await client.post(f"{ORG}/invite-member", headers=invitee.headers,
                              json={"email": "stranger@example.com", "role": "member",
                                    "organizationId": org["id"]})).json()
    rejected = await client.post(f"{ORG}/reject-invitation", headers=stranger.headers,
                                 json={"invitationId": inv2["id"]})
    assert rejected.json()["invitation"]["status"] == "rejected"
    # Cancel by an admin; a cancelled invitation cannot be accepted.
    inv3 = (await client.post(f"{ORG}/invite-member", headers=owner.headers,
                              json={"email": "later@example.com", "role": "member",
                                    "organizationId": org["id"]})).json()
    assert_error(await client.post(f"{ORG}/cancel-invitation", headers=stranger.headers,
                                   json={"invitationId": inv3["id"]}), 404)
    cancelled = await client.post(f"{ORG}/cancel-invitation", headers=owner.headers,
                                  json={"invitationId": inv3["id"]})
    assert cancelled.json()["status"] == "canceled"
    late = await magic_sign_in(client, iam_db(core), "later@example.com")
    assert_error(await client.post(f"{ORG}/accept-invitation", headers=late.headers,
                                   json={"invitationId": inv3["id"]}), 409, "INVITATION_NOT_PENDING")
    statuses = {i["id"]: i["status"] for i in (await client.get(
        f"{ORG}/list-invitations", params={"organizationId": org["id"]}, headers=owner.headers)).json()}
    assert statuses == {invitation["id"]: "accepted", inv2["id"]: "rejected", inv3["id"]: "canceled"}


async def test_expired_invitation(client: httpx.AsyncClient, core: Core) -> None:
    owner = await sign_up(client, "o@example.com")
    org = await create_org(client, owner, "exp-team")
    late = await magic_sign_in(client, iam_db(core), "late@example.com")
    inv = (await client.post(f"{ORG}/invite-member", headers=owner.headers,
                             json={"email": "late@example.com", "role": "member", "organizationId": org["id"]})
           ).json()
    async with core.context("iam").db.session() as s:
        await s.execute(text("UPDATE invitations SET expires_at = 1"))
    assert_error(await client.post(f"{ORG}/accept-invitation", headers=late.headers,
                                   json={"invitationId": inv["id"]}), 410, "INVITATION_EXPIRED")
    assert await rows(core, "SELECT id FROM members WHERE user_id = :u", u=late.id) == []


async def test_member_roles_and_last_owner(client: httpx.AsyncClient) -> None:
    owner = await sign_up(client, "own@example.com")
    admin = await sign_up(client, "adm@example.com")
    member = await sign_up(client, "mem@example.com")
    org = await create_org(client, owner, "roles-org")
    await add_member(client, owner, org["id"], admin, "admin")
    await add_member(client, owner, org["id"], member, "member")
    members = (await client.get(f"{ORG}/list-members", params={"organizationId": org["id"]},
                                headers=member.headers)).json()["members"]
    by_user = {m["userId"]: m for m in members}
    # Members cannot change roles; admins cannot make owners.
    assert_error(await client.post(f"{ORG}/update-member-role", headers=member.headers,
                                   json={"memberId": by_user[member.id]["id"], "role": "admin",
                                         "organizationId": org["id"]}), 403)
    assert_error(await client.post(f"{ORG}/update-member-role", headers=admin.headers,
                                   json={"memberId": by_user[member.id]["id"], "role": "owner",
                                         "organizationId": org["id"]}), 403)
    ok = await client.post(f"{ORG}/update-member-role", headers=admin.headers,
                           json={"memberId": by_user[member.id]["id"], "role": "admin",
                                 "organizationId": org["id"]})
    assert ok.json()["role"] == "admin"
    assert_error(await client.post(f"{ORG}/remove-member", headers=owner.headers,
                                   json={"memberIdOrEmail": "own@example.com", "organizationId": org["id"]}),
                 400, "YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER")
    assert_error(await client.post(f"{ORG}/leave", headers=owner.headers, json={"organizationId": org["id"]}),
                 400, "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER")
    removed = await client.post(f"{ORG}/remove-member", headers=owner.headers,
                                json={"memberIdOrEmail": "mem@example.com", "organizationId": org["id"]})
    assert removed.status_code == 200
    assert_error(await client.get(f"{ORG}/list-members", params={"organizationId": org["id"]},
                                  headers=member.headers), 404)


async def test_one_org_cannot_read_or_change_another(client: httpx.AsyncClient, core: Core) -> None:
    a_owner = await sign_up(client, "a-owner@example.com")
    b_owner = await sign_up(client, "b-owner@example.com")
    b_member = await sign_up(client, "b-member@example.com")
    org_a = await create_org(client, a_owner, "org-a")
    org_b = await create_org(client, b_owner, "org-b")
    await add_member(client, b_owner, org_b["id"], b_member)
    before = await rows(core, "SELECT id, role FROM members ORDER BY id")
    attempts = [
        ("GET", f"{ORG}/get-full-organization", {"organizationId": org_b["id"]}, None),
        ("GET", f"{ORG}/list-members", {"organizationId": org_b["id"]}, None),
        ("GET", f"{ORG}/list-invitations", {"organizationId": org_b["id"]}, None),
        ("POST", f"{ORG}/add-member", None, {"organizationId": org_b["id"], "userId": a_owner.id, "role": "owner"}),
        ("POST", f"{ORG}/remove-member", None,
         {"organizationId": org_b["id"], "memberIdOrEmail": "b-member@example.com"}),
        ("POST", f"{ORG}/invite-member", None,
         {"organizationId": org_b["id"], "email": "x@example.com", "role": "admin"}),
        ("POST", f"{ORG}/set-active", None, {"organizationId": org_b["id"]}),
    ]
    for method, url, params, body in attempts:
        resp = await client.request(method, url, params=params, json=body, headers=a_owner.headers)
        assert_error(resp, 404, "ORGANIZATION_NOT_FOUND")
    assert await rows(core, "SELECT id, role FROM members ORDER BY id") == before
    assert await rows(core, "SELECT id FROM invitations") == []
    assert org_a["id"] != org_b["id"]


async def test_operator_sees_any_org(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    op = await bootstrap_operator(client, service_headers)
    alice = await sign_up(client, "alice@example.com")
    org = await create_org(client, alice, "alices")
    full = await client.get(f"{ORG}/get-full-organization", params={"organizationId": org["id"]}, headers=op.headers)
    assert full.status_code == 200 and full.json()["slug"] == "alices"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slug=st.one_of(st.from_regex(r"[a-z0-9-]{1,63}", fullmatch=True), st.text(min_size=0, max_size=70)))
async def test_slug_rule(client: httpx.AsyncClient, slug: str) -> None:
    import re

    acct = getattr(test_slug_rule, "_acct", None)
    if acct is None or acct[0] is not client:
        acct = (client, await sign_up(client, "slugs@example.com"))
        test_slug_rule._acct = acct  # type: ignore[attr-defined]
    resp = await client.post(f"{ORG}/create", headers=acct[1].headers, json={"name": "N", "slug": slug})
    valid = re.fullmatch(r"[a-z0-9-]{1,63}", slug) is not None
    if valid:
        assert resp.status_code in (201, 409), resp.text
    else:
        assert_error(resp, 400, "VALIDATION_ERROR")


async def test_unknown_invitation_ids(client: httpx.AsyncClient) -> None:
    u = await sign_up(client, "u@example.com")
    for invitation_id in ("nope", "x" * 64):
        for action in ("accept-invitation", "reject-invitation", "cancel-invitation"):
            resp = await client.post(f"{ORG}/{action}", headers=u.headers, json={"invitationId": invitation_id})
            assert_error(resp, 404, "INVITATION_NOT_FOUND")
    assert_error(await client.post(f"{ORG}/accept-invitation", headers=u.headers, json={"invitationId": ""}), 400)


async def test_update_and_delete(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    owner = await sign_up(client, "own@example.com")
    admin = await sign_up(client, "adm@example.com")
    org = await create_org(client, owner, "upd")
    await create_org(client, owner, "taken-slug")
    await add_member(client, owner, org["id"], admin, "admin")
    await client.post(f"{IAM}/api/nno/roles", headers=owner.headers,
                      json={"orgId": org["id"], "role": "member", "permissions": ["billing:read"]})
    ok = await client.post(f"{ORG}/update", headers=admin.headers,
                           json={"organizationId": org["id"], "data": {"name": "Renamed", "slug": "renamed"}})
    assert ok.status_code == 200 and ok.json()["slug"] == "renamed" and ok.json()["name"] == "Renamed"
    assert_error(await client.post(f"{ORG}/update", headers=admin.headers,
                                   json={"organizationId": org["id"], "data": {"slug": "taken-slug"}}),
                 400, "ORGANIZATION_SLUG_ALREADY_TAKEN")
    assert_error(await client.post(f"{ORG}/update", headers=admin.headers,
                                   json={"organizationId": org["id"], "data": {"orgType": "nno-operator"}}), 400)
    assert_error(await client.post(f"{ORG}/update", headers=admin.headers,
                                   json={"organizationId": org["id"], "data": {}}), 400)
    # Only an owner deletes; everything that hung off the org goes with it.
    assert_error(await client.post(f"{ORG}/delete", headers=admin.headers, json={"organizationId": org["id"]}),
                 403)
    gone = await client.post(f"{ORG}/delete", headers=owner.headers, json={"organizationId": org["id"]})
    assert gone.status_code == 200
    for table, column in (("members", "organization_id"), ("role_permissions", "org_id")):
        assert await rows(core, f"SELECT id FROM {table} WHERE {column} = :o", o=org["id"]) == []
    assert_error(await client.post(f"{ORG}/delete", headers=owner.headers, json={"organizationId": org["id"]}),
                 404)
    # The last operator organization stays.
    await bootstrap_operator(client, service_headers)
    ops = (await client.get(f"{IAM}/api/nno/organizations", params={"orgType": "nno-operator"},
                            headers=service_headers)).json()["data"]
    assert_error(await client.post(f"{ORG}/delete", headers=service_headers,
                                   json={"organizationId": ops[0]["id"]}), 409, "LAST_OPERATOR_ORG")
