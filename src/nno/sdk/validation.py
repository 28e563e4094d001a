"""The one validator of feature packages, used by activation (a package failing an error rule is
never activated), by `nno feature validate` and by tests.

Rules are data (`RULES`): an id `Vnn` in the docs' style (V06 is the documented permission-key
rule), a severity and what it checks; each finding names the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from nno.sdk.definition import FeatureDefinition, FeatureNavItem
from nno.sdk.discovery import InstalledFeature
from nno.sdk.migrations import migration_problems

Severity = Literal["error", "warning"]

FEATURE_ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
# Longest id whose names fit Cloudflare's 63 characters: {pid:10}-{stack:10}-{id}-storage-stg.
MAX_FEATURE_ID = 29
# semver.org's official pattern.
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
ENV_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
ICON_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
PATH_RE = re.compile(r"^/[A-Za-z0-9._~/{}:-]*$")
MAX_TEXT = {"displayName": 128, "description": 1024}


def permission_key_re(feature_id: str) -> re.Pattern[str]:
    """V06: `^{featureId}:[a-z-]+$`."""
    return re.compile(rf"^{re.escape(feature_id)}:[a-z-]+$")


def parse_semver(version: str) -> tuple[int, int, int, tuple[tuple[int, int | str], ...]] | None:
    """A sortable key (prerelease below its release), or None when `version` is not semver."""
    m = SEMVER_RE.match(version)
    if m is None:
        return None
    pre = m.group(4)
    # A release sorts after all its prereleases: an empty prerelease tuple is given the top marker.
    pre_key: tuple[tuple[int, int | str], ...] = (
        tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ((2, 0),))
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre_key


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "field": self.field, "message": self.message}


@dataclass
class ValidationReport:
    feature: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "valid": self.ok, "errors": len(self.errors),
                "warnings": len(self.warnings), "findings": [f.as_dict() for f in self.findings]}


@dataclass(frozen=True)
class Subject:
    """What the rules look at: the definition and, when known, how it is installed."""

    definition: FeatureDefinition
    entry_point: str | None = None
    distribution: str | None = None


Check = Callable[[Subject], Iterator[tuple[str, str]]]  # yields (field, message)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    check: Check


def _v02(s: Subject) -> Iterator[tuple[str, str]]:
    fid = s.definition.id
    if not FEATURE_ID_RE.match(fid):
        yield "id", f"id {fid!r} must be a lowercase slug: letters, digits and single hyphens, starting with a letter"
    if len(fid) > MAX_FEATURE_ID:
        yield "id", f"id {fid!r} is {len(fid)} characters; at most {MAX_FEATURE_ID} keep its resource names valid"


def _v03(s: Subject) -> Iterator[tuple[str, str]]:
    if s.entry_point is not None and s.entry_point != s.definition.id:
        yield "id", f"the nno.features entry point is named {s.entry_point!r} but the definition's id is " \
                    f"{s.definition.id!r}; they must be equal"


def _v04(s: Subject) -> Iterator[tuple[str, str]]:
    if parse_semver(s.definition.version) is None:
        yield "version", f"version {s.definition.version!r} is not semver (MAJOR.MINOR.PATCH, e.g. 1.0.0)"


def _v05(s: Subject) -> Iterator[tuple[str, str]]:
    for name, limit in MAX_TEXT.items():
        value = getattr(s.definition, name)
        if not value.strip():
            yield name, f"{name} must not be empty"
        elif len(value) > limit:
            yield name, f"{name} is {len(value)} characters; at most {limit}"


def _v06(s: Subject) -> Iterator[tuple[str, str]]:
    pattern = permission_key_re(s.definition.id)
    for i, perm in enumerate(s.definition.permissions):
        if not pattern.match(perm.key):
            yield f"permissions[{i}].key", f"permission key {perm.key!r} must match ^{s.definition.id}:[a-z-]+$"


def _v07(s: Subject) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for i, perm in enumerate(s.definition.permissions):
        if perm.key in seen:
            yield f"permissions[{i}].key", f"permission key {perm.key!r} is declared twice"
        seen.add(perm.key)
        if not perm.label.strip():
            yield f"permissions[{i}].label", f"permission {perm.key!r} needs a label"


def _v08(s: Subject) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for i, route in enumerate(s.definition.routes):
        if not PATH_RE.match(route.path) or "//" in route.path or "/../" in f"{route.path}/":
            yield f"routes[{i}].path", f"route path {route.path!r} must start with / and hold no // or .."
        if route.path in seen:
            yield f"routes[{i}].path", f"route path {route.path!r} is declared twice"
        seen.add(route.path)


def _nav_items(items: list[FeatureNavItem], where: str) -> Iterator[tuple[str, FeatureNavItem]]:
    for i, item in enumerate(items):
        yield f"{where}[{i}]", item
        yield from _nav_items(item.children, f"{where}[{i}].children")


def _v09(s: Subject) -> Iterator[tuple[str, str]]:
    routes = {r.path for r in s.definition.routes}
    for where, item in _nav_items(s.definition.navigation, "navigation"):
        if not item.label.strip():
            yield f"{where}.label", "navigation items need a label"
        if item.path not in routes:
            yield f"{where}.path", f"navigation path {item.path!r} is not one of the routes"
        if item.order < 0:
            yield f"{where}.order", f"order {item.order} must be 0 or more"


def _v10(s: Subject) -> Iterator[tuple[str, str]]:
    d = s.definition
    if d.requiresService:
        if not d.serviceEnvKey:
            yield "serviceEnvKey", "a feature with requiresService needs serviceEnvKey (e.g. TASKS_API_URL)"
        if d.worker is None:
            yield "worker", "a feature with requiresService needs a worker app factory"
    if d.serviceEnvKey and not ENV_KEY_RE.match(d.serviceEnvKey):
        yield "serviceEnvKey", f"serviceEnvKey {d.serviceEnvKey!r} must be UPPER_SNAKE_CASE"


def _v11(s: Subject) -> Iterator[tuple[str, str]]:
    d = s.definition
    if d.worker is not None and not d.requiresService:
        yield "requiresService", "the feature has a worker but requiresService is false (the shell will not call it)"


def _v12(s: Subject) -> Iterator[tuple[str, str]]:
    d = s.definition
    if d.migrations is None:
        return
    if not d.resources.d1:
        yield "migrations", "migrations need a database: declare resources.d1"
    for problem in migration_problems(d.migrations):
        yield "migrations", problem


def _v13(s: Subject) -> Iterator[tuple[str, str]]:
    for name in ("templates", "static"):
        path = getattr(s.definition, name)
        if path is not None and not path.is_dir():
            yield name, f"{name} directory {path} does not exist"


def _v14(s: Subject) -> Iterator[tuple[str, str]]:
    m = s.definition.manifest
    if m is None:
        return
    if m.id != s.definition.id:
        yield "manifest.id", f"manifest id {m.id!r} differs from the definition's id {s.definition.id!r}"
    if s.distribution is not None and _norm(m.package) != _norm(s.distribution):
        yield "manifest.package", f"manifest package {m.package!r} is not the installed distribution " \
                                  f"{s.distribution!r}"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _v15(s: Subject) -> Iterator[tuple[str, str]]:
    icons = [("icon", s.definition.icon)] + [(f"{w}.icon", i.icon) for w, i in
                                              _nav_items(s.definition.navigation, "navigation")]
    for where, icon in icons:
        if icon is not None and not ICON_RE.match(icon):
            yield where, f"icon {icon!r} should be a Lucide icon name such as bar-chart-2"


def _v16(s: Subject) -> Iterator[tuple[str, str]]:
    keys = set(s.definition.permission_keys())
    refs = [(f"routes[{i}].permission", r.permission) for i, r in enumerate(s.definition.routes)]
    refs += [(f"{w}.permission", item.permission) for w, item in _nav_items(s.definition.navigation, "navigation")]
    for where, key in refs:
        if key is not None and key not in keys:
            yield where, f"permission {key!r} is not declared in permissions"


def _v17(s: Subject) -> Iterator[tuple[str, str]]:
    d = s.definition
    if d.routes and not d.required_permissions():
        yield "permissions", "no permission is marked required: any signed-in user of the platform may open it"


def _v18(s: Subject) -> Iterator[tuple[str, str]]:
    d = s.definition
    if d.routes and d.worker is None:
        yield "worker", "the feature declares routes but no worker to serve them"


RULES: tuple[Rule, ...] = (
    Rule("V01", "error", "the package loads and its entry point gives a FeatureDefinition", lambda s: iter(())),
    Rule("V02", "error", "id is a lowercase-hyphen slug of at most 29 characters", _v02),
    Rule("V03", "error", "the entry point's name equals id", _v03),
    Rule("V04", "error", "version is semver", _v04),
    Rule("V05", "error", "displayName (<=128) and description (<=1024) are not empty", _v05),
    Rule("V06", "error", "every permission key matches ^{featureId}:[a-z-]+$", _v06),
    Rule("V07", "error", "permission keys are unique and labelled", _v07),
    Rule("V08", "error", "route paths start with / and are unique", _v08),
    Rule("V09", "error", "navigation items are labelled, point at routes, order >= 0", _v09),
    Rule("V10", "error", "requiresService comes with serviceEnvKey (UPPER_SNAKE) and a worker", _v10),
    Rule("V11", "warning", "a worker is declared with requiresService", _v11),
    Rule("V12", "error", "migrations need resources.d1 and are well-formed NNNN_name.sql files", _v12),
    Rule("V13", "error", "declared templates/static directories exist", _v13),
    Rule("V14", "error", "the manifest matches the definition and the distribution", _v14),
    Rule("V15", "warning", "icons are Lucide icon names", _v15),
    Rule("V16", "error", "routes and navigation reference declared permissions", _v16),
    Rule("V17", "warning", "a feature with screens marks a permission required", _v17),
    Rule("V18", "error", "a feature with routes has a worker to serve them", _v18),
)
RULES_BY_ID = {r.id: r for r in RULES}


def validate_definition(definition: FeatureDefinition, *, entry_point: str | None = None,
                        distribution: str | None = None) -> ValidationReport:
    subject = Subject(definition, entry_point, distribution)
    report = ValidationReport(definition.id)
    for rule in RULES:
        try:
            found = list(rule.check(subject))
        except Exception as exc:  # a rule must report, never crash the validator
            found = [("", f"could not be checked: {type(exc).__name__}: {exc}")]
        report.findings += [Finding(rule.id, rule.severity, fld, msg) for fld, msg in found]
    return report


def validate_feature(feature: InstalledFeature | FeatureDefinition) -> ValidationReport:
    """Every finding for an installed package (or a bare definition)."""
    if isinstance(feature, FeatureDefinition):
        return validate_definition(feature)
    if feature.definition is None:
        return ValidationReport(feature.name, [Finding("V01", "error", "entry point",
                                                       f"{feature.value} does not load: {feature.error}")])
    return validate_definition(feature.definition, entry_point=feature.name, distribution=feature.distribution)
