"""Values the databases refuse (NUL in text, integers beyond 64 bits) are a 400 envelope from IAM
and change nothing; they used to be 500s (SQLite: audit `since`/`until` overflow; PostgreSQL: NUL in
any body field or query filter). Found by schemathesis against a real `nno serve`."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from sqlalchemy import text

from nno.core import Core
from tests.iam.conftest import IAM, PASSWORD, iam_db, sign_in


def _assert_400(resp: httpx.Response, code: str = "VALIDATION_ERROR") -> dict:
    assert resp.status_code == 400, resp.text
    # The Better Auth surface also puts the code and message at the top level.
    assert set(resp.json()) - {"code", "message"} == {"error"}
    err = resp.json()["error"]
    assert err["code"] == code and err["requestId"]
    return dict(err)


async def test_sign_up_with_nul_creates_no_account(client: httpx.AsyncClient) -> None:
    for body in ({"email": "nul-name@example.com", "password": PASSWORD, "name": "N\x00"},
                 {"email": "nul-name@example.com", "password": PASSWORD + "\x00", "name": "N"}):
        err = _assert_400(await client.post(f"{IAM}/api/auth/sign-up/email", json=body))
        assert err["details"][0]["field"] in ("name", "password")
    assert (await sign_in(client, "nul-name@example.com")).status_code == 401


@pytest.mark.parametrize("query", ["since=100000000000000000000", "until=-100000000000000000000",
                                   "since=9223372036854775808"])
async def test_audit_time_bounds_beyond_int64_are_a_400(client: httpx.AsyncClient,
                                                        service_headers: dict[str, str], query: str) -> None:
    err = _assert_400(await client.get(f"{IAM}/api/audit?{query}", headers=service_headers))
    assert err["details"][0]["field"] in ("since", "until")
    assert (await client.get(f"{IAM}/api/audit?since=0&until=9223372036854775807",
                             headers=service_headers)).status_code == 200


@pytest.mark.parametrize("path", ["/api/audit?action=a%00", "/api/nno/grants?orgId=%00",
                                  "/api/nno/mail/outbox?to=a%00", "/api/nno/organizations?orgType=%00"])
async def test_nul_in_query_filters_is_a_400(client: httpx.AsyncClient, service_headers: dict[str, str],
                                             path: str) -> None:
    _assert_400(await client.get(f"{IAM}{path}", headers=service_headers))


@pytest.mark.parametrize("values", [{"ts": 10**25, "id": "x"}, {"ts": 1, "id": "x\x00"}, {"ts": "s", "id": [1]}])
async def test_audit_cursors_the_database_cannot_compare_are_refused(client: httpx.AsyncClient,
                                                                     service_headers: dict[str, str],
                                                                     values: dict) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
    _assert_400(await client.get(f"{IAM}/api/audit", params={"cursor": cursor}, headers=service_headers),
                "INVALID_CURSOR")


async def test_device_code_request_with_nul_is_an_oauth_400_and_stores_nothing(client: httpx.AsyncClient,
                                                                             core: Core) -> None:
    """`client_id` and `scope` are stored with the device code: NUL used to be a 500 on PostgreSQL.
    This route answers in the RFC 8628 error shape, like the rest of the device flow."""
    for kwargs in ({"data": {"client_id": "cli\x00"}}, {"json": {"client_id": "cli", "scope": "a\x00"}}):
        resp = await client.post(f"{IAM}/api/nno/device/code", **kwargs)  # type: ignore[arg-type]
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "invalid_request"
    async with iam_db(core).session() as s:
        assert (await s.execute(text("SELECT count(*) FROM device_codes"))).scalar_one() == 0


async def test_device_flow_documents_its_oauth_error_shape(client: httpx.AsyncClient) -> None:
    """The one place IAM answers outside the envelope says so in the OpenAPI document."""
    doc = (await client.get("/openapi.json")).json()
    for op in ("code", "token"):
        responses = doc["paths"][f"{IAM}/api/nno/device/{op}"]["post"]["responses"]
        schema = responses["400"]["content"]["application/json"]["schema"]
        assert schema["properties"]["error"] == {"type": "string"}, schema
        assert responses["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")
