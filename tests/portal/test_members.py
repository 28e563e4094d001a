"""Changing a member's role and removing a member from the Portal's Members page, through the core:
htmx role changes swap the member's row, removal is confirmed with its consequence, forms without their
CSRF token change nothing, the owner and the last platform-admin are protected (and the page says why),
and neither a plain member nor another platform's owner can act."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import SERVICE_KEY
from tests.portal.conftest import Browser, add_member, user_id
from tests.portal.test_invitations import members

SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}
HTMX = {"HX-Request": "true"}


async def roles(client: httpx.AsyncClient, pid: str) -> dict[str, str]:
    return {m["email"]: m["role"] for m in await members(client, pid)}


async def alice_with_member_bob(browser_factory: Callable[[], Browser],
                                client: httpx.AsyncClient) -> tuple[Browser, str, str]:
    """Alice's new platform with Bob as a plain member: (Alice's browser, the platform, Bob's id)."""
    alice, bob = browser_factory(), browser_factory()
    await alice.sign_up("alice@example.com")
    pid = await alice.onboard("Alice Inc", "alice-inc")
    await bob.sign_up("bob@example.com")
    bob_id = await user_id(client, bob)
    await add_member(client, pid, bob_id)
    return alice, pid, bob_id


async def test_admin_changes_a_role_with_htmx_and_removes_after_confirming(
        browser_factory: Callable[[], Browser], client: httpx.AsyncClient) -> None:
    alice, pid, bob_id = await alice_with_member_bob(browser_factory, client)

    page = await alice.get(f"/platforms/{pid}/members")
    assert page.status_code == 200 and "Change role" in page.text and f"/members/{bob_id}/remove" in page.text
    assert "owner stays platform-admin" in page.text  # alice's own row says why she has no controls
    role_path = f"/platforms/{pid}/members/{bob_id}/role"

    refused = await alice.post(role_path, {"role": "platform-admin"}, csrf=False, headers=HTMX)
    assert refused.status_code == 403 and (await roles(client, pid))["bob@example.com"] == "user"
    bad = await alice.post(role_path, {"role": "owner"}, headers=HTMX)
    assert bad.status_code == 400 and 'role="alert"' in bad.text and f'id="member-{bob_id}"' in bad.text
    assert (await roles(client, pid))["bob@example.com"] == "user"

    changed = await alice.post(role_path, {"role": "platform-admin"}, headers=HTMX)
    assert changed.status_code == 200 and "Now platform-admin." in changed.text, changed.text
    assert changed.text.lstrip().startswith(f'<tr id="member-{bob_id}"')
    assert (await roles(client, pid))["bob@example.com"] == "platform-admin"
    # Without htmx the form posts and comes back to the page.
    plain_form = await alice.post(role_path, {"role": "user"})
    assert plain_form.status_code == 303 and (await roles(client, pid))["bob@example.com"] == "user"

    remove = f"/platforms/{pid}/members/{bob_id}/remove"
    confirm = await alice.get(remove)
    assert confirm.status_code == 200 and "bob@example.com loses Alice Inc at once" in confirm.text
    assert "API keys they made stop working" in confirm.text
    assert (await alice.post(remove, {}, csrf=False)).status_code == 403
    assert "bob@example.com" in await roles(client, pid)
    done = await alice.post(remove, {})
    assert done.status_code == 303 and done.headers["location"] == f"/platforms/{pid}/members"
    assert list(await roles(client, pid)) == ["alice@example.com"]
    assert (await alice.get(remove)).status_code == 404


async def test_the_last_admin_is_told_why_they_cannot_leave(browser_factory: Callable[[], Browser],
                                                            client: httpx.AsyncClient) -> None:
    alice = browser_factory()
    await alice.sign_up("alice@example.com")
    pid = await alice.onboard("Alice Inc", "alice-inc")
    alice_id = await user_id(client, alice)
    # The platform changes hands: alice stays its only platform-admin, but no longer its owner.
    moved = await client.patch(f"/api/v1/platforms/{pid}", headers=SERVICE, json={"ownerUserId": "someoneelse"})
    assert moved.status_code == 200, moved.text
    page = await alice.get(f"/platforms/{pid}/members")
    assert "The last platform-admin cannot be demoted or removed" in page.text
    remove = f"/platforms/{pid}/members/{alice_id}/remove"
    confirm = await alice.get(remove)
    assert confirm.status_code == 200 and "last platform-admin" in confirm.text and "Yes, remove" not in confirm.text
    # Posted anyway (an old page): IAM refuses and the page says so.
    refused = await alice.post(remove, {})
    assert refused.status_code == 409 and "last platform-admin" in refused.text
    demote = await alice.post(f"/platforms/{pid}/members/{alice_id}/role", {"role": "user"}, headers=HTMX)
    assert demote.status_code == 409 and 'role="alert"' in demote.text
    assert await roles(client, pid) == {"alice@example.com": "platform-admin"}


async def test_plain_members_and_other_platforms_cannot_act(browser_factory: Callable[[], Browser],
                                                            client: httpx.AsyncClient) -> None:
    alice, bob, mallory = browser_factory(), browser_factory(), browser_factory()
    await alice.sign_up("alice@example.com")
    pid = await alice.onboard("Alice Inc", "alice-inc")
    alice_id = await user_id(client, alice)
    await bob.sign_up("bob@example.com")
    bob_id = await user_id(client, bob)
    await add_member(client, pid, bob_id)
    await mallory.sign_up("mallory@example.com")
    await mallory.onboard("Mallory Inc", "mallory-inc")

    # Bob, a plain member, is offered nothing and refused everything (the Registry shows a platform's
    # pages to its admins only; IAM's own 403 for him is tested in tests/iam/test_platform_members.py).
    page = await bob.get(f"/platforms/{pid}/members")
    assert page.status_code == 404 and "Change role" not in page.text and "/remove" not in page.text
    assert (await bob.get(f"/platforms/{pid}/members/{alice_id}/remove")).status_code == 404
    assert (await bob.post(f"/platforms/{pid}/members/{bob_id}/role", {"role": "platform-admin"},
                           headers=HTMX)).status_code == 404
    assert (await bob.post(f"/platforms/{pid}/members/{alice_id}/remove", {})).status_code == 404
    # Mallory, another platform's owner, does not even see the platform.
    for path in (f"/platforms/{pid}/members", f"/platforms/{pid}/members/{bob_id}/remove"):
        resp = await mallory.get(path)
        assert resp.status_code == 404 and "bob@example.com" not in resp.text, path
    assert (await mallory.post(f"/platforms/{pid}/members/{bob_id}/role", {"role": "platform-admin"})
            ).status_code == 404
    assert (await mallory.post(f"/platforms/{pid}/members/{bob_id}/remove", {})).status_code == 404
    assert await roles(client, pid) == {"alice@example.com": "platform-admin", "bob@example.com": "user"}


async def test_a_row_of_someone_removed_meanwhile_reloads_the_page(browser_factory: Callable[[], Browser],
                                                                   client: httpx.AsyncClient) -> None:
    alice, pid, bob_id = await alice_with_member_bob(browser_factory, client)
    assert (await client.delete(f"/api/v1/iam/api/nno/platform-members/{pid}/{bob_id}", headers=SERVICE)
            ).status_code == 200
    resp = await alice.post(f"/platforms/{pid}/members/{bob_id}/role", {"role": "platform-admin"}, headers=HTMX)
    assert resp.status_code == 204 and resp.headers["hx-redirect"] == f"/platforms/{pid}/members"
    assert "bob@example.com" not in await roles(client, pid)
