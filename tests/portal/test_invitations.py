"""Platform invitations in the Portal, through the core: the Members page's invite form and pending
list with a confirmed cancel, and the accept page the mail links to (signed in, proven address).
Another platform's owner can neither see nor act; forms without their CSRF token change nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

import httpx

from tests.conftest import SERVICE_KEY
from tests.portal.conftest import IAM, Browser, mails

INV = f"{IAM}/api/nno/platform-invitations"
SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}


async def pending(client: httpx.AsyncClient, pid: str) -> list[dict[str, str]]:
    resp = await client.get(INV, params={"platformId": pid}, headers=SERVICE)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


async def members(client: httpx.AsyncClient, pid: str) -> list[dict[str, str]]:
    resp = await client.get(f"{IAM}/api/nno/platform-members", params={"platformId": pid}, headers=SERVICE)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


async def accept_path(client: httpx.AsyncClient, email: str) -> str:
    for body in await mails(client, email):
        found = re.search(r"(/invitations/accept\?token=\S+)", body)
        if found:
            return found.group(1)
    raise AssertionError(f"no invitation mailed to {email}")


async def prove(browser: Browser, client: httpx.AsyncClient, email: str, next_path: str) -> None:
    """Signs the browser in with the magic link mailed to `email` (which proves the address)."""
    resp = await browser.post("/sign-in/magic-link", {"email": email, "next": next_path})
    assert resp.status_code == 200, resp.text
    link = next(m.group(1) for b in await mails(client, email)
                if (m := re.search(r"(/api/v1/iam/api/auth/magic-link/verify\?\S+)", b)))
    assert (await browser.http.get(link)).status_code == 302


async def test_invite_then_the_proven_invitee_accepts(browser_factory: Callable[[], Browser],
                                                     client: httpx.AsyncClient) -> None:
    alice, bob = browser_factory(), browser_factory()
    await alice.sign_up("alice@example.com")
    pid = await alice.onboard("Alice Inc", "alice-inc")
    page = await alice.get(f"/platforms/{pid}/members")
    assert page.status_code == 200 and "Invite a member" in page.text and "No pending invitations" in page.text

    # Without the form's CSRF token nothing is sent.
    refused = await alice.post(f"/platforms/{pid}/members/invite", {"email": "bob@example.com", "role": "user"},
                               csrf=False)
    assert refused.status_code == 403 and await pending(client, pid) == []
    # A bad address is explained on the page and changes nothing.
    bad = await alice.post(f"/platforms/{pid}/members/invite", {"email": "not-an-address", "role": "user"})
    assert 400 <= bad.status_code < 500 and 'role="alert"' in bad.text and await pending(client, pid) == []
    bad_role = await alice.post(f"/platforms/{pid}/members/invite", {"email": "bob@example.com", "role": "owner"})
    assert 400 <= bad_role.status_code < 500 and await pending(client, pid) == []

    sent = await alice.post(f"/platforms/{pid}/members/invite", {"email": "bob@example.com", "role": "user"})
    assert sent.status_code == 303, sent.text
    listed = await alice.get(sent.headers["location"])
    assert "Invitation sent to" in listed.text and "bob@example.com" in listed.text
    assert [i["email"] for i in await pending(client, pid)] == ["bob@example.com"]

    link = await accept_path(client, "bob@example.com")
    # Signed out: sign in first, and come back.
    resp = await bob.get(link)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/sign-in?next=")
    # Signed up with the address but not proven: refused, told how to prove it.
    await bob.sign_up("bob@example.com")
    refused_page = await bob.get(link)
    assert refused_page.status_code == 403 and "Sign in with a link sent to your address" in refused_page.text
    token = unquote(link.split("token=", 1)[1])
    assert (await bob.post("/invitations/accept", {"token": token})).status_code == 403
    assert len(await members(client, pid)) == 1

    await prove(bob, client, "bob@example.com", link)
    shown = await bob.get(link)
    assert shown.status_code == 200 and "Accept the invitation" in shown.text and pid in shown.text
    assert (await bob.post("/invitations/accept", {"token": token}, csrf=False)).status_code == 403
    done = await bob.post("/invitations/accept", {"token": token})
    assert done.status_code == 200 and "You are now a" in done.text, done.text
    assert sorted(m["role"] for m in await members(client, pid)) == ["platform-admin", "user"]
    again = await bob.post("/invitations/accept", {"token": token})
    assert again.status_code == 409 and len(await members(client, pid)) == 2
    assert "No pending invitations" in (await alice.get(f"/platforms/{pid}/members")).text

    broken = await bob.get("/invitations/accept?token=")
    assert broken.status_code == 400 and "incomplete" in broken.text


async def test_cancel_is_confirmed_and_other_platforms_cannot_act(browser_factory: Callable[[], Browser],
                                                                 client: httpx.AsyncClient) -> None:
    alice, mallory = browser_factory(), browser_factory()
    await alice.sign_up("alice@example.com")
    pid = await alice.onboard("Alice Inc", "alice-inc")
    await mallory.sign_up("mallory@example.com")
    await mallory.onboard("Mallory Inc", "mallory-inc")
    assert (await alice.post(f"/platforms/{pid}/members/invite",
                             {"email": "carol@example.com", "role": "platform-admin"})).status_code == 303
    inv_id = (await pending(client, pid))[0]["id"]
    cancel = f"/platforms/{pid}/members/invitations/{inv_id}/cancel"

    for path in (f"/platforms/{pid}/members", cancel):
        resp = await mallory.get(path)
        assert resp.status_code == 404 and "carol@example.com" not in resp.text, path
    for path, form in ((f"/platforms/{pid}/members/invite", {"email": "spy@example.com", "role": "platform-admin"}),
                       (cancel, {})):
        assert (await mallory.post(path, form)).status_code == 404, path
    assert [i["email"] for i in await pending(client, pid)] == ["carol@example.com"]

    confirm = await alice.get(cancel)
    assert confirm.status_code == 200 and "stops working" in confirm.text and "carol@example.com" in confirm.text
    assert (await alice.post(cancel, {}, csrf=False)).status_code == 403
    assert len(await pending(client, pid)) == 1
    assert (await alice.post(cancel, {})).status_code == 303
    assert await pending(client, pid) == []
    assert (await alice.get(cancel)).status_code == 404
    # The cancelled link no longer makes anyone a member.
    carol = browser_factory()
    link = await accept_path(client, "carol@example.com")
    await prove(carol, client, "carol@example.com", link)
    resp = await carol.post("/invitations/accept", {"token": unquote(link.split("token=", 1)[1])})
    assert resp.status_code == 409 and len(await members(client, pid)) == 1
