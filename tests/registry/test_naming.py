"""The resource-name builder (DECISIONS 11): property-based over valid and invalid parts."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nno.kernel.naming import build_resource_name as kernel_builder
from nno.registry.naming import (
    MAX_RESOURCE_NAME,
    RESOURCE_TYPES,
    InvalidResourceName,
    build_resource_name,
    is_valid_resource_name,
    platform_repo_name,
)

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
ids = st.text(ALNUM, min_size=10, max_size=10)
stack_ids = st.one_of(st.just("default"), ids)
words = st.text(ALNUM, min_size=1, max_size=12)
services = st.lists(words, min_size=1, max_size=4).map("-".join)
types = st.one_of(st.none(), st.sampled_from(RESOURCE_TYPES))
NAME_RE = re.compile(r"^[a-z0-9-]{1,63}$")


def test_registry_reexports_the_kernel_builder() -> None:
    assert build_resource_name is kernel_builder


def test_documented_examples() -> None:
    assert build_resource_name("k3m9p2xw7q", "ab1cd2ef3g", "auth") == "k3m9p2xw7q-ab1cd2ef3g-auth"
    assert build_resource_name("k3m9p2xw7q", "default", "auth") == "k3m9p2xw7q-default-auth"
    assert build_resource_name("k3m9p2xw7q", "default", "auth", "db") == "k3m9p2xw7q-default-auth-db"
    assert build_resource_name("k3m9p2xw7q", "default", "auth", staging=True) == "k3m9p2xw7q-default-auth-stg"
    assert build_resource_name("k3m9p2xw7q", "ab1cd2ef3g", None, "storage") == "k3m9p2xw7q-ab1cd2ef3g-storage"
    assert platform_repo_name("k3m9p2xw7q") == "nno-platform-k3m9p2xw7q"


@settings(max_examples=50, deadline=None)
@given(pid=ids, sid=stack_ids, service=services, rtype=types, staging=st.booleans())
def test_valid_parts_give_the_documented_shape_or_a_length_refusal(
        pid: str, sid: str, service: str, rtype: str | None, staging: bool) -> None:
    expected = "-".join([pid, sid, service, *([rtype] if rtype else []), *(["stg"] if staging else [])])
    if len(expected) > MAX_RESOURCE_NAME:
        with pytest.raises(InvalidResourceName) as info:
            build_resource_name(pid, sid, service, rtype, staging=staging)
        assert info.value.field == "name"
        return
    name = build_resource_name(pid, sid, service, rtype, staging=staging)
    assert name == expected
    assert NAME_RE.match(name)
    assert is_valid_resource_name(name)
    assert name.startswith(pid + "-" + sid + "-")
    assert name.endswith("-stg") == staging


@settings(max_examples=50, deadline=None)
@given(pid=st.text(max_size=14), sid=stack_ids, service=services)
def test_any_other_platform_id_is_refused(pid: str, sid: str, service: str) -> None:
    if re.fullmatch(r"[a-z0-9]{10}", pid):
        return
    with pytest.raises(InvalidResourceName) as info:
        build_resource_name(pid, sid, service)
    assert info.value.field == "platformId"


@settings(max_examples=50, deadline=None)
@given(pid=ids, service=st.text(max_size=20))
def test_service_outside_the_slug_rule_is_refused(pid: str, service: str) -> None:
    if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", service):
        assert build_resource_name(pid, "default", service).endswith(service)
        return
    with pytest.raises(InvalidResourceName) as info:
        build_resource_name(pid, "default", service)
    assert info.value.field == "service"


@settings(max_examples=30, deadline=None)
@given(pid=ids, sid=st.text(max_size=12), rtype=st.text(max_size=8))
def test_bad_stack_ids_and_types_are_refused(pid: str, sid: str, rtype: str) -> None:
    if sid != "default" and not re.fullmatch(r"[a-z0-9]{10}", sid):
        with pytest.raises(InvalidResourceName):
            build_resource_name(pid, sid, "auth")
    if rtype not in RESOURCE_TYPES:
        with pytest.raises(InvalidResourceName) as info:
            build_resource_name(pid, "default", "auth", rtype)
        assert info.value.field == "resourceType"


def test_a_name_needs_a_service_or_a_type() -> None:
    with pytest.raises(InvalidResourceName):
        build_resource_name("k3m9p2xw7q", "default", None)


def test_the_63_character_limit_is_exact() -> None:
    pid, sid = "k3m9p2xw7q", "ab1cd2ef3g"
    room = MAX_RESOURCE_NAME - len(f"{pid}-{sid}-")
    assert len(build_resource_name(pid, sid, "a" * room)) == 63
    with pytest.raises(InvalidResourceName):
        build_resource_name(pid, sid, "a" * (room + 1))


def test_a_trailing_newline_is_not_a_valid_character() -> None:
    # `$` in Python regexes also matches before a final newline; the rule must not.
    for bad in ("k3m9p2xw7q\n", "default\n"):
        with pytest.raises(InvalidResourceName):
            build_resource_name(bad, "default", "auth") if bad != "default\n" else build_resource_name(
                "k3m9p2xw7q", bad, "auth")
    with pytest.raises(InvalidResourceName):
        build_resource_name("k3m9p2xw7q", "default", "auth\n")
    assert not is_valid_resource_name("k3m9p2xw7q-default-auth\n")
    with pytest.raises(InvalidResourceName):
        platform_repo_name("k3m9p2xw7q\n")
