"""What API key permission strings mean (`nno.kernel.scopes`), and the gateway's reading of the
platform a request names (`platform_lifecycle`): properties over generated input."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from nno.gateway.middleware.platform_lifecycle import body_platform, path_platform, query_platforms
from nno.kernel.identity import Identity
from nno.kernel.scopes import action_of, grants, key_allows

AREA = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
ACTION = st.from_regex(r"[a-z-]{1,12}", fullmatch=True)


@given(AREA, ACTION)
def test_a_permission_grants_itself_and_wildcards_grant_it(area: str, action: str) -> None:
    wanted = f"{area}:{action}"
    for held in ([wanted], ["*"], [f"{area}:*"]):
        assert grants(held, wanted)
    assert not grants([], wanted)


@given(AREA, AREA, ACTION, ACTION)
def test_nothing_else_grants_it(area: str, other_area: str, action: str, other_action: str) -> None:
    wanted = f"{area}:{action}"
    held = f"{other_area}:{other_action}"
    implied = area == other_area and (other_action == action or (action == "read" and other_action == "write"))
    assert grants([held], wanted) == implied
    if other_area != area:
        assert not grants([f"{other_area}:*"], wanted)


@given(st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,8}:[a-z-*]{1,8}", fullmatch=True), max_size=5),
       AREA, ACTION)
def test_only_scoped_keys_are_narrowed(held: list[str], area: str, action: str) -> None:
    wanted = f"{area}:{action}"
    for auth_type in ("session", "service", "dev", "anonymous"):
        assert key_allows(Identity(auth_type=auth_type, permissions=tuple(held)), wanted)  # type: ignore[arg-type]
    key = Identity(auth_type="apikey", platform_id="p", permissions=tuple(held))
    assert key_allows(key, wanted) == (not held or grants(held, wanted))
    assert key_allows(key, None) == (not held)  # a route no scoped key may use


@given(st.sampled_from(["GET", "HEAD", "OPTIONS", "get", "POST", "PUT", "PATCH", "DELETE"]))
def test_safe_methods_read_and_the_rest_write(method: str) -> None:
    assert action_of(method) == ("read" if method.upper() in ("GET", "HEAD", "OPTIONS") else "write")


@given(st.dictionaries(st.text(max_size=10), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10), max_size=5), st.one_of(st.none(), st.text(max_size=20)))
def test_the_body_names_its_top_level_string_platform_id(data: dict[str, object], pid: str | None) -> None:
    if pid is not None:
        data = {**data, "platformId": pid}
    expected = data.get("platformId") if isinstance(data.get("platformId"), str) and data.get("platformId") else None
    assert body_platform(json.dumps(data).encode()) == expected
    assert body_platform(b"  \n" + json.dumps(data, indent=2).encode()) == expected
    assert body_platform(json.dumps([data]).encode()) is None


@given(st.binary(max_size=200))
def test_any_body_bytes_are_read_without_error(raw: bytes) -> None:
    found = body_platform(raw)
    assert found is None or isinstance(found, str)


@given(st.from_regex(r"[a-z0-9]{10}", fullmatch=True), st.sampled_from(["", "/tenants", "/audit", "/x/y"]))
def test_the_path_names_the_registry_platform(pid: str, rest: str) -> None:
    assert path_platform(f"/api/v1/platforms/{pid}{rest}") == pid
    assert path_platform(f"/api/v1/provisioning/{pid}{rest}") is None
    assert path_platform(f"/api/v1/platforms/by-slug/{pid}") is None
    assert path_platform("/api/v1/platforms/") is None and path_platform("/api/v1/platforms") is None


@given(st.lists(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), max_size=3),
       st.dictionaries(st.from_regex(r"[a-zA-Z]{1,10}", fullmatch=True), st.text(max_size=5), max_size=3))
def test_the_query_names_every_platform_id(pids: list[str], others: dict[str, str]) -> None:
    from urllib.parse import urlencode

    others.pop("platformId", None)
    query = urlencode([*others.items(), *(("platformId", p) for p in pids)]).encode()
    assert query_platforms(query) == pids
