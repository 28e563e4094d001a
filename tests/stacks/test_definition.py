"""The StackDefinition model and its rules (S01-S07), property-based where the input is open."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from nno.sdk.stack import (
    AvailableFeature,
    StackDefinition,
    check_features,
    greatest,
    parse_definition,
)

ids = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,5})?", fullmatch=True)
ranges = st.sampled_from(["*", "^1.0.0", "~1.2.0", ">=1.0.0 <2.0.0", "1.x", "1.2.3"])


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, object]:
    members = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    # Distinct ids may still nest as prefixes (`ab_` and `ab_c_`); keep those out of the valid set.
    prefixes = [m.replace("-", "_") + "_" for m in members]
    if any(i != j and b.startswith(a) for i, a in enumerate(prefixes) for j, b in enumerate(prefixes)):
        members = members[:1]
    return {"resources": draw(st.fixed_dictionaries({"d1": st.booleans(), "r2": st.booleans(), "kv": st.booleans()})),
            "features": [{"id": m, "version": draw(ranges)} for m in members]}


@given(definitions())
def test_a_valid_definition_survives_a_round_trip(data: dict[str, object]) -> None:
    parsed = parse_definition(data)
    dumped = parsed.model_dump(mode="json")
    assert parse_definition(dumped) == parsed
    assert all(f["tablePrefix"] and f["keyPrefix"] for f in dumped["features"])  # stored explicitly


@given(definitions(), st.data())
def test_overlapping_prefixes_are_always_refused(data: dict[str, object], draw: st.DataObject) -> None:
    features = list(data["features"])  # type: ignore[call-overload]
    base = draw.draw(st.from_regex(r"[a-z]{1,5}_", fullmatch=True))
    longer = base + draw.draw(st.from_regex(r"[a-z0-9]{0,4}_", fullmatch=True))
    features = [{"id": "one-x", "tablePrefix": base}, {"id": "two-x", "tablePrefix": longer}] + [
        f for f in features if f["id"] not in ("one-x", "two-x")]  # type: ignore[index]
    with pytest.raises(ValidationError, match="S03"):
        parse_definition({**data, "features": features})


@given(st.lists(st.text(max_size=12), max_size=8))
def test_greatest_ignores_what_is_not_semver(values: list[str]) -> None:
    import semantic_version

    valid = []
    for v in values:
        try:
            valid.append(semantic_version.Version(v))
        except ValueError:
            pass
    assert greatest(values) == (str(max(valid)) if valid else None)


def test_check_features_names_each_rule() -> None:
    definition = StackDefinition.model_validate({
        "resources": {"d1": True},
        "features": [{"id": "absent"}, {"id": "old", "version": "^2.0.0"}, {"id": "needy"}, {"id": "bad"},
                     {"id": "ok"}],
    })
    installed = {
        "old": AvailableFeature("old", "1.5.0"),
        "needy": AvailableFeature("needy", "1.0.0", frozenset({"d1", "kv", "r2"})),
        "bad": AvailableFeature("bad", "1.0.0", errors=("V06 broken",)),
        "ok": AvailableFeature("ok", "3.0.0", frozenset({"d1"})),
    }
    check = check_features(definition, installed)
    assert not check.ok
    assert [(p.rule, p.field) for p in check.problems] == [
        ("S04", "features[0].id"), ("S05", "features[1].version"), ("S06", "resources"), ("S07", "features[3].id")]
    assert "kv, r2" in check.problems[2].message
    fine = StackDefinition.model_validate({"resources": {"d1": True}, "features": [{"id": "ok"}]})
    assert check_features(fine, installed).ok


def test_members_get_the_shared_bindings_they_ask_for() -> None:
    definition = parse_definition({"resources": {"d1": True, "kv": True},
                                   "features": [{"id": "a", "bindings": ["d1"]}, {"id": "b"}]})
    a, b = definition.features
    assert a.shared_bindings(definition.resources) == {"DB": "d1"}
    assert b.shared_bindings(definition.resources) == {"DB": "d1", "KV": "kv"}
    with pytest.raises(ValidationError, match=r"S01 features\[0\]\.bindings: r2"):
        parse_definition({"resources": {"d1": True}, "features": [{"id": "a", "bindings": ["r2"]}]})
    # A member bound to less than it declares breaks S06.
    check = check_features(definition, {"a": AvailableFeature("a", "1.0.0", frozenset({"kv"})),
                                        "b": AvailableFeature("b", "1.0.0", frozenset({"kv"}))})
    assert [(p.rule, p.message) for p in check.problems] == [
        ("S06", "feature 'a' declares kv, which the stack does not share with it")]


def test_installed_first_party_features_are_available() -> None:
    from nno.sdk.stack import available_features

    found = available_features()
    for name, feature in found.items():
        assert feature.id == name and feature.version
