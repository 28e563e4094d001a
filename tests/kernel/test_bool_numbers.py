"""A JSON `true`/`false` is not a number: every number an InputModel declares (plain, `Int64`,
optional, constrained, in lists and dicts, in nested InputModels, int `Literal`s and `IntEnum`s)
refuses booleans with the 400 envelope naming the field, while bool fields and free-form values
keep taking them and numbers (and numeric strings) keep working."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from nno.kernel.inputs import INT64_MAX, INT64_MIN, InputModel, Int64
from nno.kernel.service import create_service_app, wrap_service


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


class Inner(InputModel):
    count: int = 0


class Body(InputModel):
    plain: int = 0
    wide: Int64 = 0
    optional: int | None = None
    positive: Annotated[int, Field(gt=0)] | None = None
    ints: list[int] = []
    by_name: dict[str, int] = {}
    inner: Inner | None = None
    inners: list[Inner] = []
    either: int | str = 0
    literal: Literal[1, 2] = 1
    size: Size = Size.SMALL
    ratio: float = 0.0
    flag: bool = False
    int_or_flag: int | bool = 0
    anything: Any = None
    blob: dict[str, Any] = {}


# field -> how to put a value where that field expects a number, and where the error points.
NUMBER_SLOTS: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "plain": (lambda v: v, ("plain",)),
    "wide": (lambda v: v, ("wide",)),
    "optional": (lambda v: v, ("optional",)),
    "positive": (lambda v: v, ("positive",)),
    "ints": (lambda v: [1, v], ("ints", 1)),
    "by_name": (lambda v: {"a": 1, "b": v}, ("by_name", "b")),
    "inner": (lambda v: {"count": v}, ("inner", "count")),
    "inners": (lambda v: [{"count": 1}, {"count": v}], ("inners", 1, "count")),
    "either": (lambda v: v, ("either", "int")),
    "literal": (lambda v: v, ("literal",)),
    "size": (lambda v: v, ("size",)),
    "ratio": (lambda v: v, ("ratio",)),
}


@given(st.sampled_from(sorted(NUMBER_SLOTS)), st.booleans())
def test_a_boolean_is_refused_wherever_a_number_is_expected(field: str, value: bool) -> None:
    place, loc = NUMBER_SLOTS[field]
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({field: place(value)})
    errors = caught.value.errors()
    assert errors[0]["loc"] == loc
    assert "not a boolean" in errors[0]["msg"]
    assert errors[0]["type"] in ("int_type", "float_type")


@given(st.integers(INT64_MIN, INT64_MAX), st.integers(1, INT64_MAX))
def test_integers_in_range_are_still_accepted(number: int, positive: int) -> None:
    body = Body.model_validate({"plain": number, "wide": number, "optional": number, "positive": positive,
                                "ints": [number], "by_name": {"k": number}, "inner": {"count": number},
                                "inners": [{"count": number}], "either": number, "ratio": number})
    assert (body.plain, body.wide, body.optional, body.positive) == (number, number, number, positive)
    assert body.ints == [number] and body.by_name == {"k": number} and body.either == number
    assert body.inner == Inner(count=number) and body.inners == [Inner(count=number)]
    assert body.ratio == float(number)


@given(st.booleans())
def test_booleans_still_go_where_booleans_are_expected(value: bool) -> None:
    body = Body.model_validate({"flag": value, "int_or_flag": value, "anything": value, "blob": {"k": [value]}})
    assert body.flag is value and body.int_or_flag is value and body.anything is value
    assert body.blob == {"k": [value]}


def test_numeric_strings_stay_accepted_as_fastapi_does() -> None:
    body = Body.model_validate({"plain": "5", "optional": "-3", "ints": ["7"], "literal": 2, "size": 2})
    assert (body.plain, body.optional, body.ints, body.literal, body.size) == (5, -3, [7], 2, Size.LARGE)
    with pytest.raises(ValidationError):
        Body.model_validate({"plain": "true"})


def test_the_check_adds_nothing_to_the_published_json_schema() -> None:
    class Lax(BaseModel):
        plain: int = 0
        wide: Int64 = 0
        positive: Annotated[int, Field(gt=0)] | None = None
        ints: list[int] = []
        either: int | str = 0
        size: Size = Size.SMALL

    class Checked(InputModel):
        plain: int = 0
        wide: Int64 = 0
        positive: Annotated[int, Field(gt=0)] | None = None
        ints: list[int] = []
        either: int | str = 0
        size: Size = Size.SMALL

    lax, checked = Lax.model_json_schema(), Checked.model_json_schema()
    assert checked["properties"] == lax["properties"] and checked["$defs"] == lax["$defs"]


def test_models_that_are_not_input_models_are_left_alone() -> None:
    class Plain(BaseModel):
        count: int

    assert Plain.model_validate({"count": True}).count == 1


def _client() -> httpx.AsyncClient:
    app = create_service_app("t", title="t")

    @app.post("/things")
    async def create(body: Body) -> dict[str, Any]:
        return body.model_dump(mode="json")

    transport = httpx.ASGITransport(app=wrap_service(app))
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


@pytest.mark.parametrize(("body", "field"), [({"plain": False}, "plain"),
                                             ({"inners": [{"count": True}]}, "inners.0.count"),
                                             ({"by_name": {"x": True}}, "by_name.x")])
async def test_a_service_answers_the_validation_envelope_naming_the_field(body: dict[str, Any], field: str) -> None:
    async with _client() as c:
        resp = await c.post("/things", json=body)
        assert resp.status_code == 400, resp.text
        err = resp.json()["error"]
        assert err["code"] == "VALIDATION_ERROR" and err["requestId"]
        assert err["details"][0]["field"] == field and err["details"][0]["in"] == "body"
        assert "not a boolean" in err["details"][0]["message"]
        ok = await c.post("/things", json={"plain": 3, "flag": True})
        assert ok.status_code == 200 and ok.json()["plain"] == 3 and ok.json()["flag"] is True


# --- through the gateway, on real endpoints ----------------------------------------------------

P = "/api/v1/platforms"


def _assert_bool_refused(resp: httpx.Response, field: str) -> None:
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == "VALIDATION_ERROR" and err["requestId"]
    assert [d["field"] for d in err["details"]] == [field]
    assert "not a boolean" in err["details"][0]["message"]


async def test_registry_refuses_a_boolean_timestamp_and_changes_nothing(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    # Creating: nothing is created.
    resp = await client.post(P, json={"name": "Acme", "slug": "acme-bool", "trialEndsAt": True},
                             headers=service_headers)
    _assert_bool_refused(resp, "trialEndsAt")
    assert (await client.get(f"{P}/by-slug/acme-bool", headers=service_headers)).status_code == 404

    created = await client.post(P, json={"name": "Acme", "slug": "acme-bool"}, headers=service_headers)
    assert created.status_code == 201, created.text
    platform = created.json()
    # Updating: nothing changes, not even updatedAt.
    for value in (False, True):
        resp = await client.patch(f"{P}/{platform['id']}", json={"trialEndsAt": value, "name": "Other"},
                                  headers=service_headers)
        _assert_bool_refused(resp, "trialEndsAt")
    after = (await client.get(f"{P}/{platform['id']}", headers=service_headers)).json()
    assert after == platform
    # A real timestamp still works.
    resp = await client.patch(f"{P}/{platform['id']}", json={"trialEndsAt": 1_800_000_000_000}, headers=service_headers)
    assert resp.status_code == 200 and resp.json()["trialEndsAt"] == 1_800_000_000_000


async def test_iam_refuses_a_boolean_key_lifetime_and_creates_no_key(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    resp = await client.post("/api/v1/iam/api/auth/sign-up/email",
                             json={"name": "Ada", "email": "ada-bool@example.com", "password": "correct-horse-9"})
    assert resp.status_code == 200, resp.text
    client.cookies.clear()
    user_id, user = resp.json()["user"]["id"], {"Authorization": f"Bearer {resp.json()['token']}"}
    platform = await client.post(P, json={"name": "Ada Co", "slug": "ada-bool", "ownerUserId": user_id},
                                 headers=service_headers)
    assert platform.status_code == 201, platform.text
    member = await client.post("/api/v1/iam/api/nno/platform-members", headers=service_headers,
                               json={"platformId": platform.json()["id"], "userId": user_id, "role": "platform-admin"})
    assert member.status_code in (200, 201), member.text
    key = {"name": "k", "platformId": platform.json()["id"]}
    # True would read as a key living one second (expiresIn) or expiring at 1 ms after the epoch.
    for extra, field in [({"expiresIn": True}, "expiresIn"), ({"expiresAt": True}, "expiresAt"),
                         ({"expiresIn": False}, "expiresIn")]:
        _assert_bool_refused(await client.post("/api/v1/iam/api/nno/apikey", json=key | extra, headers=user), field)
    listed = await client.get("/api/v1/iam/api/nno/apikey", headers=user)
    assert listed.status_code == 200 and listed.json()["data"] == []
    ok = await client.post("/api/v1/iam/api/nno/apikey", json=key | {"expiresIn": 3600}, headers=user)
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize("query", ["limit=true", "limit=false", "limit=1.5", "limit=x"])
async def test_an_integer_query_parameter_refuses_booleans(
        client: httpx.AsyncClient, service_headers: dict[str, str], query: str) -> None:
    # Already the case (pydantic does not read the string "true" as an int): pinned here.
    resp = await client.get(f"{P}?{query}", headers=service_headers)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == "VALIDATION_ERROR"
    assert err["details"][0]["field"] == "limit" and err["details"][0]["in"] == "query"
    assert (await client.get(f"{P}?limit=5", headers=service_headers)).status_code == 200
