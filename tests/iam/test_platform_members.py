"""Changing a platform member's role and removing a member (`PATCH`/`DELETE
/api/nno/platform-members/{platformId}/{userId}`), through the gateway on both backends: the platform's
admins (or an operator, or the service key) act, never above their own role, never on the platform's
owner or its last platform-admin; a removed member's keys stop working at once; everything audited."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from tests.conftest import BASE_URL
from tests.iam.conftest import IAM, Account, assert_error, bootstrap_operator, iam_db, magic_sign_in, rows
from tests.iam.test_platform_invitations import OTHER_PID, PID, make_member, members

MEMBERS = f"{IAM}/api/nno/platform-members"
KEYS = f"{IAM}/api/nno/apikey"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # The gateway re-asks IAM about a key at every request, so a removal shows at once.
    return make_settings(auth_cache_ttl_s=0)


def member_url(user_id: str, pid: str = PID) -> str:
    return f"{MEMBERS}/{pid}/{user_id}"


async def person(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str], email: str,
                 role: str | None, pid: str = PID) -> Account:
    who = await magic_sign_in(client, iam_db(core), email)
    if role is not None:
        await make_member(client, service_headers, who, pid, role)
    return who


@pytest.fixture
async def admin(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> Account:
    return await person(client, core, service_headers, "owner@example.com", "platform-admin")


@pytest.fixture
async def plain(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> Account:
    return await person(client, core, service_headers, "plain@example.com", "user")


async def audited(core: Core, action: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in await rows(
        core, "SELECT target_id, actor_id FROM audit_log WHERE action = :a AND outcome = 'success' "
              "ORDER BY timestamp, id", a=action)]


async def test_admin_promotes_demotes_and_removes(client: httpx.AsyncClient, core: Core, admin: Account,
                                                  plain: Account) -> None:
    listed = (await client.get(MEMBERS, headers=admin.headers, params={"platformId": PID})).json()["data"]
    assert {m["email"] for m in listed} == {"owner@example.com", "plain@example.com"}

    up = await client.patch(member_url(plain.id), headers=admin.headers, json={"role": "platform-admin"})
    assert up.status_code == 200, up.text
    assert up.json() | {"role": "platform-admin", "previousRole": "user", "changed": True} == up.json()
    same = await client.patch(member_url(plain.id), headers=admin.headers, json={"role": "platform-admin"})
    assert same.status_code == 200 and same.json()["changed"] is False
    # Two admins now: the first may step down, and the promoted one demotes nobody above them.
    down = await client.patch(member_url(admin.id), headers=plain.headers, json={"role": "user"})
    assert down.status_code == 200 and down.json()["role"] == "user", down.text
    assert sorted(await members(core)) == sorted([(admin.id, "user"), (plain.id, "platform-admin")])

    gone = await client.delete(member_url(admin.id), headers=plain.headers)
    assert gone.status_code == 200 and gone.json()["removed"] is True, gone.text
    assert await members(core) == [(plain.id, "platform-admin")]
    assert_error(await client.delete(member_url(admin.id), headers=plain.headers), 404, "MEMBER_NOT_FOUND")
    assert await audited(core, "platform_member.set_role") == [(plain.id, admin.id), (admin.id, plain.id)]
    assert await audited(core, "platform_member.remove") == [(admin.id, plain.id)]


async def test_last_admin_cannot_be_demoted_or_removed(client: httpx.AsyncClient, core: Core, admin: Account,
                                                       plain: Account, service_headers: dict[str, str]) -> None:
    for who in (admin.headers, service_headers):
        assert_error(await client.patch(member_url(admin.id), headers=who, json={"role": "user"}),
                     409, "LAST_PLATFORM_ADMIN")
        assert_error(await client.delete(member_url(admin.id), headers=who), 409, "LAST_PLATFORM_ADMIN")
    assert (admin.id, "platform-admin") in await members(core)
    # Removing a plain member is fine, and the admin of another platform does not count here.
    await person(client, core, service_headers, "rival@example.com", "platform-admin", OTHER_PID)
    assert (await client.delete(member_url(plain.id), headers=admin.headers)).status_code == 200
    assert_error(await client.delete(member_url(admin.id), headers=admin.headers), 409, "LAST_PLATFORM_ADMIN")


async def test_the_owner_cannot_be_demoted_or_removed(make_settings: Callable[..., Settings],
                                                      service_headers: dict[str, str]) -> None:
    """The owner is the Registry's `ownerUserId`: IAM asks it before any demotion or removal."""
    core = Core(make_settings(auth_cache_ttl_s=0), services=["iam", "registry"], with_edge=False)
    await core.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=BASE_URL) as client:
            owner = await magic_sign_in(client, iam_db(core), "founder@example.com")
            made = await client.post("/api/v1/platforms", headers=service_headers,
                                     json={"name": "Owned", "slug": "owned", "ownerUserId": owner.id})
            assert made.status_code == 201, made.text
            pid = made.json()["id"]
            await make_member(client, service_headers, owner, pid, "platform-admin")
            second = await person(client, core, service_headers, "second@example.com", "platform-admin", pid)
            for who in (second.headers, service_headers):
                assert_error(await client.patch(member_url(owner.id, pid), headers=who, json={"role": "user"}),
                             409, "PLATFORM_OWNER")
                assert_error(await client.delete(member_url(owner.id, pid), headers=who), 409, "PLATFORM_OWNER")
            # The owner may remove the other admin.
            assert (await client.delete(member_url(second.id, pid), headers=owner.headers)).status_code == 200
            assert await members(core, pid) == [(owner.id, "platform-admin")]
    finally:
        await core.stop()


async def test_lowest_role_is_refused(client: httpx.AsyncClient, core: Core, admin: Account, plain: Account,
                                      service_headers: dict[str, str]) -> None:
    other = await person(client, core, service_headers, "other@example.com", "user")
    for target in (admin.id, other.id, plain.id):
        assert_error(await client.patch(member_url(target), headers=plain.headers, json={"role": "platform-admin"}),
                     403, "FORBIDDEN")
        assert_error(await client.delete(member_url(target), headers=plain.headers), 403, "FORBIDDEN")
    assert sorted(await members(core)) == sorted([(admin.id, "platform-admin"), (plain.id, "user"),
                                                  (other.id, "user")])
    assert await audited(core, "platform_member.set_role") == []


async def test_another_platforms_admin_cannot_see_or_change(client: httpx.AsyncClient, core: Core, admin: Account,
                                                            plain: Account, service_headers: dict[str, str]) -> None:
    rival = await person(client, core, service_headers, "rival@example.com", "platform-admin", OTHER_PID)
    assert_error(await client.get(MEMBERS, headers=rival.headers, params={"platformId": PID}), 403)
    assert_error(await client.patch(member_url(plain.id), headers=rival.headers, json={"role": "platform-admin"}),
                 403)
    assert_error(await client.delete(member_url(plain.id), headers=rival.headers), 403)
    assert_error(await client.delete(member_url("nosuchuser"), headers=rival.headers), 403)
    # A plain member of this platform who administers another gains nothing here.
    await make_member(client, service_headers, plain, OTHER_PID, "platform-admin")
    assert_error(await client.delete(member_url(admin.id), headers=plain.headers), 403)
    assert sorted(await members(core)) == sorted([(admin.id, "platform-admin"), (plain.id, "user")])


async def test_a_demoted_admin_promotes_nobody(client: httpx.AsyncClient, core: Core, admin: Account,
                                              plain: Account, service_headers: dict[str, str]) -> None:
    """With two roles an admin already holds the highest, so "never above one's own" bites on whoever
    lost the admin role: from the demotion on, they hand out nothing."""
    second = await person(client, core, service_headers, "second@example.com", "platform-admin")
    assert (await client.patch(member_url(second.id), headers=admin.headers, json={"role": "user"})).status_code == 200
    assert_error(await client.patch(member_url(plain.id), headers=second.headers, json={"role": "platform-admin"}),
                 403)
    assert_error(await client.patch(member_url(second.id), headers=second.headers, json={"role": "platform-admin"}),
                 403)
    assert sorted(await members(core)) == sorted([(admin.id, "platform-admin"), (plain.id, "user"),
                                                  (second.id, "user")])


async def test_bad_input_is_a_400_and_unknown_a_404(client: httpx.AsyncClient, core: Core, admin: Account,
                                                    plain: Account) -> None:
    for role in ("owner", "nno-operator", "", "admin", None, 3):
        assert_error(await client.patch(member_url(plain.id), headers=admin.headers, json={"role": role}), 400)
    assert_error(await client.patch(member_url(plain.id), headers=admin.headers, json={}), 400)
    assert_error(await client.patch(f"{MEMBERS}/BAD!/{plain.id}", headers=admin.headers, json={"role": "user"}), 400)
    assert_error(await client.patch(member_url("nosuchuser"), headers=admin.headers, json={"role": "user"}),
                 404, "MEMBER_NOT_FOUND")
    assert_error(await client.delete(member_url("nosuchuser"), headers=admin.headers), 404, "MEMBER_NOT_FOUND")
    assert_error(await client.delete(member_url(plain.id)), 401)
    # An admin's API key manages no members (keys never manage IAM).
    key = (await client.post(KEYS, headers=admin.headers, json={"name": "k", "platformId": PID})).json()["key"]
    assert_error(await client.patch(member_url(plain.id), headers={"x-api-key": key}, json={"role": "platform-admin"}),
                 403)
    assert_error(await client.delete(member_url(plain.id), headers={"x-api-key": key}), 403)
    assert (plain.id, "user") in await members(core)


async def test_operator_manages_any_platform(client: httpx.AsyncClient, core: Core, admin: Account, plain: Account,
                                             service_headers: dict[str, str]) -> None:
    op = await bootstrap_operator(client, service_headers)
    assert (await client.patch(member_url(plain.id), headers=op.headers, json={"role": "platform-admin"})
            ).status_code == 200
    assert (await client.delete(member_url(admin.id), headers=op.headers)).status_code == 200
    assert await members(core) == [(plain.id, "platform-admin")]
    assert await audited(core, "platform_member.remove") == [(admin.id, op.id)]


async def test_removed_members_keys_and_rights_go_at_once(client: httpx.AsyncClient, core: Core, admin: Account,
                                                          plain: Account) -> None:
    assert (await client.patch(member_url(plain.id), headers=admin.headers, json={"role": "platform-admin"})
            ).status_code == 200
    key = (await client.post(KEYS, headers=plain.headers, json={"name": "ci", "platformId": PID})).json()["key"]
    with_key = {"x-api-key": key}
    assert (await client.get(KEYS, headers=with_key)).status_code != 401
    # Demoted: the key acts as a plain member (no member list), then, removed, not at all.
    assert (await client.patch(member_url(plain.id), headers=admin.headers, json={"role": "user"})).status_code == 200
    assert_error(await client.get(MEMBERS, headers=plain.headers, params={"platformId": PID}), 403)
    assert (await client.delete(member_url(plain.id), headers=admin.headers)).status_code == 200
    assert_error(await client.get(KEYS, headers=with_key), 401)
    assert_error(await client.get(MEMBERS, headers=plain.headers, params={"platformId": PID}), 403)
    assert_error(await client.post(KEYS, headers=plain.headers, json={"name": "again", "platformId": PID}), 403)
    session = (await client.get(f"{IAM}/api/nno/session", headers=plain.headers)).json()
    assert session.get("platformId") in (None, "") or session.get("platformId") != PID, session


async def test_a_suspended_platform_is_changed_by_operators_only(client: httpx.AsyncClient, core: Core,
                                                                 admin: Account, plain: Account,
                                                                 service_headers: dict[str, str]) -> None:
    from nno.kernel.platform_status import status_cache_key

    await core.context("iam").kv.set(status_cache_key(PID), "suspended")
    assert_error(await client.patch(member_url(plain.id), headers=admin.headers, json={"role": "platform-admin"}),
                 451, "PLATFORM_SUSPENDED")
    assert_error(await client.delete(member_url(plain.id), headers=admin.headers), 451, "PLATFORM_SUSPENDED")
    assert (plain.id, "user") in await members(core)
    assert (await client.delete(member_url(plain.id), headers=service_headers)).status_code == 200


async def test_two_admins_demoting_each_other_at_once_leave_one(client: httpx.AsyncClient, core: Core,
                                                                admin: Account,
                                                                service_headers: dict[str, str]) -> None:
    import asyncio

    second = await person(client, core, service_headers, "second@example.com", "platform-admin")
    answers = await asyncio.gather(
        client.patch(member_url(second.id), headers=admin.headers, json={"role": "user"}),
        client.delete(member_url(admin.id), headers=second.headers))
    # The second to run finds its caller demoted (403) or its target the last admin (409).
    codes = sorted(r.status_code for r in answers)
    assert codes[0] == 200 and codes[1] in (403, 409), [r.text for r in answers]
    assert [role for _, role in await members(core)].count("platform-admin") == 1
