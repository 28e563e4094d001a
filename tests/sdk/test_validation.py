"""The feature contract and its one validator (nno.sdk.validation): every rule by number, with the
field it names; property tests for the id, version and permission-key rules."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nno.sdk import (
    FeatureDefinition,
    FeatureManifest,
    FeatureNavItem,
    FeaturePermission,
    FeatureResources,
    FeatureRoute,
    parse_semver,
    validate_feature,
)
from nno.sdk.discovery import InstalledFeature
from nno.sdk.validation import RULES, validate_definition


def app_factory(env: object) -> object:
    return object()


def good(**changes: object) -> FeatureDefinition:
    base: dict[str, object] = dict(
        id="tasks", version="1.2.3", displayName="Tasks", description="Projects and tasks",
        icon="list-checks", routes=[FeatureRoute(path="/", permission="tasks:read")],
        navigation=[FeatureNavItem(label="Tasks", path="/", order=10, permission="tasks:read")],
        permissions=[FeaturePermission(key="tasks:read", label="Read", required=True),
                     FeaturePermission(key="tasks:write-export", label="Export")],
        requiresService=True, serviceEnvKey="TASKS_API_URL", worker=app_factory)
    base.update(changes)
    return FeatureDefinition(**base)  # type: ignore[arg-type]


def rules_of(definition: FeatureDefinition, **kw: str) -> set[str]:
    return {f.rule for f in validate_definition(definition, **kw).errors}


def test_a_complete_definition_passes_every_rule() -> None:
    report = validate_feature(good())
    assert report.ok and report.findings == [], report.findings


def test_rules_are_numbered_data() -> None:
    ids = [r.id for r in RULES]
    assert ids == [f"V{n:02d}" for n in range(1, len(ids) + 1)]
    assert {r.severity for r in RULES} <= {"error", "warning"}
    assert next(r for r in RULES if r.id == "V06").summary == "every permission key matches ^{featureId}:[a-z-]+$"


def test_v06_documented_examples() -> None:
    for key in ("billing_read", "Billing:Read", "tasks:", "tasks:Read", "other:read", "tasks:read:x"):
        d = good(permissions=[FeaturePermission(key=key, label="x", required=True)], routes=[], navigation=[])
        report = validate_definition(d)
        found = [f for f in report.errors if f.rule == "V06"]
        assert found and found[0].field == "permissions[0].key" and key in found[0].message, key
    for key in ("tasks:read", "tasks:write-export", "tasks:admin-manage"):
        d = good(permissions=[FeaturePermission(key=key, label="x", required=True)], routes=[], navigation=[])
        assert "V06" not in rules_of(d)


def test_each_rule_names_its_field(tmp_path: Path) -> None:
    cases: list[tuple[FeatureDefinition, dict[str, str], str, str]] = [
        (good(id="bad_id"), {}, "V02", "id"),
        (good(id="a" * 30), {}, "V02", "id"),
        (good(), {"entry_point": "todo"}, "V03", "id"),
        (good(version="1.0"), {}, "V04", "version"),
        (good(description="  "), {}, "V05", "description"),
        (good(permissions=[FeaturePermission(key="tasks:read", label="a", required=True),
                           FeaturePermission(key="tasks:read", label="b")]), {}, "V07", "permissions[1].key"),
        (good(routes=[FeatureRoute(path="list")], navigation=[]), {}, "V08", "routes[0].path"),
        (good(navigation=[FeatureNavItem(label="X", path="/nope")]), {}, "V09", "navigation[0].path"),
        (good(navigation=[FeatureNavItem(label="X", path="/", order=-1)]), {}, "V09", "navigation[0].order"),
        (good(serviceEnvKey=None), {}, "V10", "serviceEnvKey"),
        (good(serviceEnvKey="tasks-url"), {}, "V10", "serviceEnvKey"),
        (good(migrations=tmp_path / "missing", resources=FeatureResources(d1=True)), {}, "V12", "migrations"),
        (good(templates=tmp_path / "missing"), {}, "V13", "templates"),
        (good(manifest=FeatureManifest(id="todo", name="T", package="p")), {}, "V14", "manifest.id"),
        (good(routes=[FeatureRoute(path="/", permission="tasks:admin")]), {}, "V16", "routes[0].permission"),
        (good(requiresService=False, serviceEnvKey=None, worker=None), {}, "V18", "worker"),
    ]
    for definition, kw, rule, field in cases:
        errors = [f for f in validate_definition(definition, **kw).errors if f.rule == rule]
        assert errors, (rule, validate_definition(definition, **kw).findings)
        assert errors[0].field == field and errors[0].message, errors[0]


def test_warnings_do_not_block() -> None:
    d = good(icon="BarChart2", permissions=[FeaturePermission(key="tasks:read", label="Read")])
    report = validate_definition(d)
    assert report.ok
    assert {f.rule for f in report.warnings} == {"V15", "V17"}
    assert "V11" in {f.rule for f in validate_definition(good(requiresService=False, serviceEnvKey=None)).warnings}


def test_migrations_rule_needs_a_d1_and_well_named_files(tmp_path: Path) -> None:
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE {{prefix}}t (id TEXT);\n")
    assert "V12" in rules_of(good(migrations=tmp_path))  # no resources.d1
    assert "V12" not in rules_of(good(migrations=tmp_path, resources=FeatureResources(d1=True)))
    (tmp_path / "2_more.sql").write_text("SELECT 1;")
    (tmp_path / "0001_again.sql").write_text("SELECT 1;")
    problems = [f.message for f in validate_definition(
        good(migrations=tmp_path, resources=FeatureResources(d1=True))).errors if f.rule == "V12"]
    assert any("2_more.sql" in p for p in problems) and any("0001_again.sql" in p for p in problems)


def test_a_package_that_does_not_load_fails_v01() -> None:
    broken = InstalledFeature("tasks", "pkg:definition", "pkg", "1.0", None, "ImportError: nope")
    report = validate_feature(broken)
    assert not report.ok and [f.rule for f in report.errors] == ["V01"] and "ImportError" in report.errors[0].message


def test_a_definition_with_a_worker_and_hooks_builds() -> None:
    # The contract must be constructible with callables (regression: an unresolved forward reference
    # made every FeatureDefinition fail to build).
    async def hook(event: object) -> None:
        return None

    d = good(hooks={"on_activate": hook})
    assert d.hooks.for_event("activate") is hook and d.worker is app_factory


SLUG = st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,5}){0,2}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(fid=SLUG, action=st.text(min_size=0, max_size=12))
def test_v06_is_exactly_the_documented_pattern(fid: str, action: str) -> None:
    key = f"{fid}:{action}"
    d = good(id=fid, permissions=[FeaturePermission(key=key, label="x", required=True)], routes=[], navigation=[])
    expected_ok = re.fullmatch(r"[a-z-]+", action) is not None
    assert ("V06" not in rules_of(d)) == expected_ok


@settings(max_examples=150, deadline=None)
@given(fid=st.text(max_size=40), version=st.text(max_size=20), key=st.text(max_size=30),
       path=st.text(max_size=20), label=st.text(max_size=10))
def test_the_validator_reports_and_never_raises(fid: str, version: str, key: str, path: str, label: str) -> None:
    d = FeatureDefinition(id=fid, version=version, displayName=label, description=label,
                          permissions=[FeaturePermission(key=key, label=label)],
                          routes=[FeatureRoute(path=path)], navigation=[FeatureNavItem(label=label, path=path)])
    report = validate_definition(d)
    assert all(f.field and f.message and f.rule.startswith("V") for f in report.findings)
    if re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", fid) is None:
        assert "V02" in {f.rule for f in report.errors}


@given(st.tuples(*(st.integers(0, 50),) * 3), st.tuples(*(st.integers(0, 50),) * 3))
def test_semver_orders_like_numbers(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    pa, pb = parse_semver(".".join(map(str, a))), parse_semver(".".join(map(str, b)))
    assert pa is not None and pb is not None
    assert (pa < pb) == (a < b)
    rc = parse_semver(".".join(map(str, a)) + "-rc.1")
    assert rc is not None and rc < pa


def test_semver_rejects() -> None:
    for bad in ("1", "1.0", "01.0.0", "1.0.0.0", "v1.0.0", "1.0.0-", ""):
        assert parse_semver(bad) is None, bad
