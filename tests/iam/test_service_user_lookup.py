"""`GET /api/nno/users/{userId}` (contracts §3): services learn a user's address from their id, through
the gateway, with the service key; people and API keys are refused; unknown or impossible ids are a
404/400 envelope. Also: `POST /api/validate-session` refuses unstorable input like every other body."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.iam.conftest import IAM, assert_error, bootstrap_operator, sign_up

USERS = f"{IAM}/api/nno/users"


async def test_a_service_reads_a_user_by_id(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    acct = await sign_up(client, "Lookup@Example.com", name="Lou")
    resp = await client.get(f"{USERS}/{acct.id}", headers=service_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"id", "email", "name", "emailVerified", "createdAt"}
    assert (body["id"], body["email"], body["name"], body["emailVerified"]) == (
        acct.id, "lookup@example.com", "Lou", False)
    assert isinstance(body["createdAt"], int) and body["createdAt"] > 0


async def test_people_and_keys_are_refused(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    acct = await sign_up(client, "someone@example.com")
    other = await sign_up(client, "other@example.com")
    operator = await bootstrap_operator(client, service_headers)
    # A signed-in user, even reading their own id, and an operator: it is for services only.
    for headers, target in ((acct.headers, acct.id), (acct.headers, other.id), (operator.headers, acct.id)):
        assert_error(await client.get(f"{USERS}/{target}", headers=headers), 403, "FORBIDDEN")
    assert_error(await client.get(f"{USERS}/{acct.id}"), 401)
    assert_error(await client.get(f"{USERS}/{acct.id}", headers={"Authorization": "Bearer not-a-session"}), 401)
    # Someone who claims to be a service in headers the gateway strips is still only a user.
    forged = {**acct.headers, "X-Nno-Auth-Type": "service", "X-Nno-Role": "service"}
    assert_error(await client.get(f"{USERS}/{acct.id}", headers=forged), 403, "FORBIDDEN")


async def test_unknown_and_impossible_ids(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    err = assert_error(await client.get(f"{USERS}/nosuchuser", headers=service_headers), 404, "USER_NOT_FOUND")
    assert err["details"] == {"userId": "nosuchuser"}
    for bad in ("a%00b", "x" * 65, "a%20b", "%C3%A9t%C3%A9", "a.b"):
        assert_error(await client.get(f"{USERS}/{bad}", headers=service_headers), 400, "VALIDATION_ERROR")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user_id=st.text(min_size=1, max_size=80))
async def test_any_id_is_answered_in_the_envelope(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                  user_id: str) -> None:
    resp = await client.get(f"{USERS}/{quote(user_id, safe='')}", headers=service_headers)
    assert resp.status_code in (400, 404), resp.text
    assert set(resp.json()) == {"error"}


async def test_validate_session_refuses_nul_with_a_400(client: httpx.AsyncClient,
                                                       service_headers: dict[str, str]) -> None:
    """The body model is an InputModel like every other: NUL is a 400 naming the field, not a 401."""
    acct = await sign_up(client, "v@example.com")
    for token in (acct.token + "\x00", "\x00"):
        err = assert_error(await client.post(f"{IAM}/api/validate-session", headers=service_headers,
                                             json={"token": token}), 400, "VALIDATION_ERROR")
        assert err["details"][0]["field"] == "token"
    assert (await client.post(f"{IAM}/api/validate-session", headers=service_headers,
                              json={"token": acct.token})).status_code == 200
