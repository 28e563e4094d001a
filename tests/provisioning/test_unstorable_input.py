"""Values PostgreSQL refuses (NUL in text, integers beyond BIGINT in a cursor) are a 400 envelope from
Provisioning and create no job; a job-list cursor holding a string where the time goes used to be a
500 on PostgreSQL (`operator does not exist: bigint < character varying`)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from nno.core import Core
from tests.provisioning.conftest import PROV, create_platform
from tests.provisioning.test_api import assert_error, job_count


def _cursor(values: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


async def test_nul_in_a_body_creates_no_job(core: Core, client: httpx.AsyncClient,
                                            service_headers: dict[str, str]) -> None:
    pid = await create_platform(client, service_headers)
    err = assert_error(await client.post(f"{PROV}/provision/platform/deprovision",
                                         json={"platformId": pid, "reason": "bye\x00"}, headers=service_headers),
                       400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "reason"
    assert await job_count(core) == 0


@pytest.mark.parametrize("values", [{"c": 10**25, "i": "x"}, {"c": "later", "i": "x"}, {"c": 1, "i": "x\x00"},
                                    {"c": 1, "i": ["x"]}])
async def test_job_cursors_the_database_cannot_compare_are_refused(
        client: httpx.AsyncClient, service_headers: dict[str, str], values: dict[str, Any]) -> None:
    assert_error(await client.get(f"{PROV}/provision/jobs", params={"cursor": _cursor(values)},
                                  headers=service_headers), 400, "INVALID_CURSOR")


async def test_nul_in_query_filters_is_a_400(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    assert_error(await client.get(f"{PROV}/provision/jobs?type=%00", headers=service_headers), 400,
                 "VALIDATION_ERROR")
    assert_error(await client.get(f"{PROV}/provision/dead-letters?unresolved=%00", headers=service_headers), 400,
                 "VALIDATION_ERROR")
