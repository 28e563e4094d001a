"""IAM's API description names the statuses its creating routes really answer (201, and 200 where
an existing thing is left as it was), so generated clients and schema checks agree with the API."""

from __future__ import annotations

import httpx
import pytest

IAM = "/api/v1/iam"
CREATED_ONLY = ["/api/nno/apikey", "/api/nno/grants", "/api/auth/organization/create",
                "/api/auth/organization/add-member", "/api/auth/organization/invite-member",
                "/api/nno/organizations", "/api/nno/bootstrap", "/api/nno/platform-invitations"]
CREATED_OR_KEPT = ["/api/nno/roles", "/api/nno/platform-members"]


@pytest.fixture
async def described(client: httpx.AsyncClient) -> dict:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.json()["paths"]


@pytest.mark.parametrize("path", CREATED_ONLY)
async def test_creating_routes_document_201(described: dict, path: str) -> None:
    statuses = set(described[IAM + path]["post"]["responses"])
    assert "201" in statuses and "200" not in statuses


@pytest.mark.parametrize("path", CREATED_OR_KEPT)
async def test_upserting_routes_document_201_and_200(described: dict, path: str) -> None:
    assert {"200", "201"} <= set(described[IAM + path]["post"]["responses"])
