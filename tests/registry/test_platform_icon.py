"""The platform's icon (issue #12): set at PATCH /api/v1/platforms/{id} with the console shell's own
rule (`nno.kernel.icons`), shown in GET, audited by digest, and refused with a 400 that changes
nothing; only the platform's admins and operators reach it."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.registry.conftest import IAM, P, User, assert_error

from nno.kernel.icons import MAX_ICON_BYTES, check_icon

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
                       "awAAAABJRU5ErkJggg==")
UPLOAD = "data:image/png;base64," + base64.b64encode(PNG).decode()
URL = "https://cdn.example.com/brand/icon.png"
BAD = [
    "http://cdn.example.com/icon.png",  # not https
    "data:image/svg+xml;base64," + base64.b64encode(b"<svg onload=alert(1)/>").decode(),  # SVG could script
    "data:image/png;base64," + base64.b64encode(b"\0" * (MAX_ICON_BYTES + 1)).decode(),  # too big
    "data:image/png;base64,not base64!",
    "data:image/png;base64,",
    "javascript:alert(1)",
    "https://user:pw@cdn.example.com/i.png",
    'https://cdn.example.com/"><script>',
    "icon.png",
    "garbage",
]


async def _member(client: httpx.AsyncClient, service_headers: dict[str, str], user: User, pid: str,
                  role: str) -> None:
    resp = await client.post(f"{IAM}/api/nno/platform-members", headers=service_headers,
                             json={"platformId": pid, "userId": user.id, "role": role})
    assert resp.status_code in (200, 201), resp.text


async def _icon(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> Any:
    resp = await client.get(f"{P}/{pid}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["icon"]


async def test_an_admin_sets_a_url_or_an_upload_and_clears_it(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    owner = await make_user("owner")
    platform = await create_platform(ownerUserId=owner.id)
    pid = platform["id"]
    assert platform["icon"] is None
    await _member(client, service_headers, owner, pid, "platform-admin")

    for value in (URL, UPLOAD):
        resp = await client.patch(f"{P}/{pid}", json={"icon": value}, headers=owner.headers)
        assert resp.status_code == 200 and resp.json()["icon"] == value, resp.text
        assert await _icon(client, owner.headers, pid) == value
    # The operator may set it too; "" or null goes back to the initials.
    assert (await client.patch(f"{P}/{pid}", json={"icon": URL}, headers=service_headers)).json()["icon"] == URL
    assert (await client.patch(f"{P}/{pid}", json={"icon": ""}, headers=owner.headers)).json()["icon"] is None
    await client.patch(f"{P}/{pid}", json={"icon": UPLOAD}, headers=owner.headers)
    assert (await client.patch(f"{P}/{pid}", json={"icon": None}, headers=owner.headers)).json()["icon"] is None

    audit = (await client.get(f"{P}/{pid}/audit", params={"limit": 100}, headers=service_headers)).json()["data"]
    changes = [(row["before"], row["after"]) for row in audit if row["action"] == "platform.update"]
    icons = [(b.get("icon"), a.get("icon")) for b, a in changes if "icon" in a]
    assert len(icons) == 6, changes
    flat = [v for pair in icons for v in pair]
    assert URL in flat and None in flat
    # An upload is audited by its type, size and digest, never the image itself.
    assert UPLOAD not in flat and any(isinstance(v, str) and v.startswith(f"upload:png:{len(PNG)}B:") for v in flat)


async def test_a_bad_icon_is_a_400_and_changes_nothing(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await create_platform())["id"]
    await client.patch(f"{P}/{pid}", json={"icon": URL}, headers=service_headers)
    before = (await client.get(f"{P}/{pid}", headers=service_headers)).json()
    for value in BAD:
        err = assert_error(await client.patch(f"{P}/{pid}", json={"icon": value, "name": "Changed"},
                                              headers=service_headers), 400, "VALIDATION_ERROR")
        assert "icon" in str(err["details"]), err
    for value in (42, ["a"], {"u": URL}):
        assert_error(await client.patch(f"{P}/{pid}", json={"icon": value}, headers=service_headers), 400)
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json() == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=80), st.builds(lambda s: "https://" + s, st.text(max_size=40)),
                       st.builds(lambda t, s: f"data:image/{t};base64,{s}",
                                 st.sampled_from(["png", "svg+xml", "jpeg", "x"]), st.text(max_size=40))))
async def test_any_icon_the_shell_refuses_the_registry_refuses(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        create_platform: Callable[..., Awaitable[dict[str, Any]]], value: str) -> None:
    pid = (await create_platform())["id"]
    try:
        expected = check_icon(value)
    except ValueError:
        assert_error(await client.patch(f"{P}/{pid}", json={"icon": value}, headers=service_headers), 400)
        assert await _icon(client, service_headers, pid) is None
    else:
        resp = await client.patch(f"{P}/{pid}", json={"icon": value}, headers=service_headers)
        assert resp.status_code == 200 and resp.json()["icon"] == expected, resp.text


async def test_only_this_platforms_admins_reach_its_icon(
        client: httpx.AsyncClient, service_headers: dict[str, str], make_user: Callable[..., Awaitable[User]],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    alice, bob, member = await make_user("alice"), await make_user("bob"), await make_user("member")
    mine = (await create_platform(ownerUserId=alice.id))["id"]
    theirs = (await create_platform(ownerUserId=bob.id))["id"]
    await _member(client, service_headers, alice, mine, "platform-admin")
    await _member(client, service_headers, bob, theirs, "platform-admin")
    await _member(client, service_headers, member, mine, "user")
    # Another platform's admin, and the lowest role on this one: the platform is not there for them.
    assert_error(await client.patch(f"{P}/{mine}", json={"icon": URL}, headers=bob.headers), 404, "NOT_FOUND")
    assert_error(await client.patch(f"{P}/{mine}", json={"icon": URL}, headers=member.headers), 404, "NOT_FOUND")
    assert await _icon(client, service_headers, mine) is None
    assert (await client.patch(f"{P}/{mine}", json={"icon": URL}, headers=alice.headers)).status_code == 200
