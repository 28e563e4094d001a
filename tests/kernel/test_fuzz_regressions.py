"""Findings of fuzzing a real `nno serve` (both backends), kept as regression tests.

Free-form JSON fields (a resource's `metadata`, a feature's `config`, an organization's `metadata`)
took any nesting depth. A value nested a few hundred levels deep was stored and echoed back by the
create call, but every later read went through the response model, whose serializer stops at 255
levels: the record's list and get routes (and the audit log holding it) answered 500 from then on,
on SQLite and PostgreSQL alike. Input nesting is now bounded at the edge of every service.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from nno.kernel.inputs import MAX_JSON_DEPTH, InputModel

IAM = "/api/v1/iam"
P = "/api/v1/platforms"


def nested(depth: int, leaf: Any = 1) -> Any:
    """A JSON value of `depth` containers, alternating lists and objects."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


class Body(InputModel):
    data: dict[str, Any] = {}
    items: list[Any] = []


class BodyOut(BaseModel):
    data: dict[str, Any]
    items: list[Any]


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(min_value=1, max_value=MAX_JSON_DEPTH + 40), field=st.sampled_from(["data", "items"]))
def test_free_form_values_nest_at_most_max_json_depth(depth: int, field: str) -> None:
    # The field's own container counts: `{"data": {"k": 1}}` nests 1 level.
    value = nested(depth) if field == "items" else {"k": nested(depth - 1)}
    value = value if isinstance(value, dict if field == "data" else list) else [value]
    if depth <= MAX_JSON_DEPTH:
        body = Body.model_validate({field: value})
        # What is accepted can be answered through a response model.
        BodyOut(data=body.data, items=body.items).model_dump_json()
    else:
        with pytest.raises(ValidationError) as caught:
            Body.model_validate({field: value})
        assert caught.value.errors()[0]["loc"] == (field,)
        assert f"{MAX_JSON_DEPTH} levels" in caught.value.errors()[0]["msg"]


def test_the_depth_check_does_not_recurse_past_the_limit() -> None:
    # Far deeper than Python's recursion limit would allow a naive walk to go.
    value: Any = 1
    for _ in range(50_000):
        value = [value]
    with pytest.raises(ValidationError):
        Body.model_validate({"items": value})


def _too_deep() -> dict[str, Any]:
    return {"a": nested(300)}


async def test_deep_resource_metadata_is_a_400_and_the_list_still_answers(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    made = await client.post(P, json={"name": "Deep", "slug": "deep-meta"}, headers=service_headers)
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    for path, body in (
        (f"{P}/{pid}/resources", {"type": "kv", "name": f"{pid}-deep", "metadata": _too_deep()}),
        (f"{P}/{pid}/features", {"featureId": "deep", "version": "1", "config": _too_deep()}),
    ):
        resp = await client.post(path, json=body, headers=service_headers)
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"][0]["field"] in ("metadata", "config"), error
        listed = await client.get(path, headers=service_headers)
        assert listed.status_code == 200, listed.text
        assert listed.json()["pagination"]["total"] == 0
    audit = await client.get(f"{P}/{pid}/audit", headers=service_headers)
    assert audit.status_code == 200, audit.text

    fine = {"type": "kv", "name": f"{pid}-ok", "metadata": {"a": nested(MAX_JSON_DEPTH - 1)}}
    assert (await client.post(f"{P}/{pid}/resources", json=fine, headers=service_headers)).status_code == 201
    listed = await client.get(f"{P}/{pid}/resources", headers=service_headers)
    assert listed.status_code == 200 and listed.json()["data"][0]["metadata"] == fine["metadata"]


async def test_deep_organization_metadata_is_a_400_and_the_list_still_answers(client: httpx.AsyncClient) -> None:
    signed = await client.post(f"{IAM}/api/auth/sign-up/email", json={
        "name": "Deep", "email": "deep@nno.localhost", "password": "correct-horse-9"})
    assert signed.status_code == 200, signed.text
    user = {"Authorization": f"Bearer {signed.json()['token']}"}
    resp = await client.post(f"{IAM}/api/auth/organization/create", headers=user,
                             json={"name": "Deep", "slug": "deep-org", "metadata": _too_deep()})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["details"][0]["field"] == "metadata"
    listed = await client.get(f"{IAM}/api/auth/organization/list", headers=user)
    assert listed.status_code == 200 and listed.json() == [], listed.text
