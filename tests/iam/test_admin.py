"""Bootstrap, service tokens, the audit log, and the gateway's identity headers cannot be forged."""

from __future__ import annotations

import httpx
import jwt

from nno.core import Core
from nno.iam import service_tokens
from tests.iam.conftest import (
    IAM,
    PASSWORD,
    add_member,
    assert_error,
    bootstrap_operator,
    create_org,
    rows,
    sign_in,
    sign_up,
)

N = f"{IAM}/api/nno"


async def test_bootstrap_once_with_service_key(client: httpx.AsyncClient, core: Core,
                                               service_headers: dict[str, str]) -> None:
    body = {"email": "root@nno.localhost", "password": PASSWORD}
    assert_error(await client.post(f"{N}/bootstrap", json=body), 401)
    user = await sign_up(client, "user@example.com")
    assert_error(await client.post(f"{N}/bootstrap", headers=user.headers, json=body), 403)
    assert (await client.get(f"{N}/bootstrap", headers=service_headers)).json() == {"bootstrapped": False}
    assert_error(await client.post(f"{N}/bootstrap", headers=service_headers,
                                   json={**body, "password": "weak"}), 422, "WEAK_PASSWORD")
    made = await client.post(f"{N}/bootstrap", headers=service_headers, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["organization"]["orgType"] == "nno-operator"
    again = await client.post(f"{N}/bootstrap", headers=service_headers,
                              json={"email": "second@nno.localhost", "password": PASSWORD})
    assert_error(again, 409, "ALREADY_BOOTSTRAPPED")
    assert (await client.get(f"{N}/bootstrap", headers=service_headers)).json() == {"bootstrapped": True}
    assert len(await rows(core, "SELECT id FROM users")) == 2
    # The operator signs in with the password and is an nno-operator everywhere.
    token = (await sign_in(client, "root@nno.localhost")).json()["token"]
    session = (await client.get(f"{N}/session", headers={"Authorization": f"Bearer {token}"})).json()
    assert session["role"] == "nno-operator"


async def test_service_tokens(client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    user = await sign_up(client, "u@example.com")
    assert_error(await client.post(f"{N}/service-token", headers=user.headers, json={}), 403)
    assert_error(await client.post(f"{N}/service-token", json={}), 401)
    minted = await client.post(f"{N}/service-token", headers=service_headers,
                               json={"audience": "registry", "ttlSeconds": 60})
    assert minted.status_code == 200
    token = minted.json()["token"]
    claims = service_tokens.verify(core.settings, token, audience="registry")
    assert claims["iss"] == "nno-iam" and claims["exp"] - claims["iat"] == 60
    ok = await client.post(f"{N}/service-token/verify", headers=service_headers,
                           json={"token": token, "audience": "registry"})
    assert ok.json()["valid"] is True
    assert_error(await client.post(f"{N}/service-token/verify", headers=service_headers,
                                   json={"token": token, "audience": "billing"}), 401, "INVALID_SERVICE_TOKEN")
    forged = jwt.encode({**claims, "aud": "registry"}, "not-the-secret-but-long-enough-0123456789", algorithm="HS256")
    assert_error(await client.post(f"{N}/service-token/verify", headers=service_headers,
                                   json={"token": forged}), 401, "INVALID_SERVICE_TOKEN")
    expired = jwt.encode({**claims, "exp": claims["iat"] - 10}, core.settings.signing_secret, algorithm="HS256")
    assert_error(await client.post(f"{N}/service-token/verify", headers=service_headers,
                                   json={"token": expired}), 401, "SERVICE_TOKEN_EXPIRED")
    assert_error(await client.post(f"{N}/service-token", headers=service_headers, json={"ttlSeconds": 99999}), 400)


async def test_audit_log_access_and_paging(client: httpx.AsyncClient, core: Core,
                                           service_headers: dict[str, str]) -> None:
    op = await bootstrap_operator(client, service_headers)
    owner = await sign_up(client, "owner@example.com")
    member = await sign_up(client, "member@example.com")
    org = await create_org(client, owner, "audited")
    other = await create_org(client, member, "other-org")
    await add_member(client, owner, org["id"], member)
    await sign_in(client, "owner@example.com", "wrong-password-9")
    for i in range(3):
        await client.post(f"{N}/roles", headers=owner.headers,
                          json={"orgId": org["id"], "role": f"r{i}", "permissions": ["billing:read"]})
    # Operators read everything, including failed sign-ins.
    everything = (await client.get(f"{IAM}/api/audit", params={"action": "auth.sign_in"}, headers=op.headers)).json()
    assert any(e["outcome"] == "failure" and e["metadata"]["email"] == "owner@example.com"
               for e in everything["data"])
    # An org admin reads their org's events only, paged by cursor, newest first.
    page1 = (await client.get(f"{IAM}/api/audit", params={"orgId": org["id"], "limit": 2},
                              headers=owner.headers)).json()
    assert page1["pagination"]["hasMore"] is True and len(page1["data"]) == 2
    page2 = (await client.get(f"{IAM}/api/audit", params={"orgId": org["id"], "limit": 2,
                                                          "cursor": page1["pagination"]["nextCursor"]},
                              headers=owner.headers)).json()
    seen = page1["data"] + page2["data"]
    assert len({e["id"] for e in seen}) == len(seen)
    assert all(e["orgId"] == org["id"] for e in seen)
    stamps = [e["timestamp"] for e in seen]
    assert stamps == sorted(stamps, reverse=True)
    total = page1["pagination"]["total"]
    assert total == 5  # org.create, member.add, three role.upsert
    # A plain member, another org's admin, and callers without orgId are refused.
    assert_error(await client.get(f"{IAM}/api/audit", params={"orgId": org["id"]}, headers=member.headers), 403)
    assert_error(await client.get(f"{IAM}/api/audit", params={"orgId": org["id"]},
                                  headers=(await sign_up(client, "x@example.com")).headers), 404)
    assert_error(await client.get(f"{IAM}/api/audit", headers=owner.headers), 403)
    assert (await client.get(f"{IAM}/api/audit", params={"orgId": other["id"]},
                             headers=member.headers)).status_code == 200
    assert_error(await client.get(f"{IAM}/api/audit", params={"cursor": "garbage!"}, headers=op.headers), 400,
                 "INVALID_CURSOR")
    assert_error(await client.get(f"{IAM}/api/audit", params={"limit": 1000}, headers=op.headers), 400)


async def test_identity_headers_cannot_be_forged(client: httpx.AsyncClient, core: Core,
                                                 service_headers: dict[str, str]) -> None:
    victim = await sign_up(client, "victim@example.com")
    org = await create_org(client, victim, "victim-org")
    attacker = await sign_up(client, "attacker@example.com")
    forged_service = {"X-Nno-Auth-Type": "service", "X-Nno-Role": "service"}
    forged_user = {"X-Nno-Auth-Type": "session", "X-Nno-User-Id": victim.id, "X-Nno-Role": "nno-operator"}
    # Without a credential, forged headers get nothing.
    assert_error(await client.post(f"{N}/bootstrap", headers=forged_service,
                                   json={"email": "evil@example.com", "password": PASSWORD}), 401)
    assert_error(await client.get(f"{N}/platform-members", params={"userId": victim.id},
                                  headers=forged_user), 401)
    # With the attacker's own session, the forged headers are replaced by the real identity.
    resp = await client.get(f"{IAM}/api/auth/organization/get-full-organization",
                            params={"organizationId": org["id"]}, headers={**attacker.headers, **forged_user})
    assert_error(resp, 404)
    resp = await client.post(f"{N}/platform-members", headers={**attacker.headers, **forged_service},
                             json={"platformId": "plat000001", "userId": attacker.id, "role": "platform-admin"})
    assert_error(resp, 403)
    assert await rows(core, "SELECT user_id FROM platform_members") == []
    assert len(await rows(core, "SELECT id FROM organizations")) == 1


async def test_mail_outbox_for_operators(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    await client.post(f"{IAM}/api/auth/sign-in/magic-link", json={"email": "m@example.com"})
    listed = (await client.get(f"{N}/mail/outbox", params={"to": "m@example.com"}, headers=service_headers)).json()
    assert len(listed["data"]) == 1 and listed["data"][0]["status"] == "logged"
    user = await sign_up(client, "nosy@example.com")
    assert_error(await client.get(f"{N}/mail/outbox", headers=user.headers), 403)
