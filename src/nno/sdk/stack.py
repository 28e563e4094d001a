"""The `StackDefinition`: what one version of a stack template (or a platform-local stack) is made of.

A stack is a named, versioned set of features that share one D1, one R2 bucket and one KV
namespace (each optional, provisioning-stacks.md §6). Every member feature's Worker receives the
same shared bindings, under the binding names its entry gives, and keeps to its own table prefix
in the shared D1 and its own key prefix in the shared R2 bucket and KV namespace.

The Stack Registry stores a definition as a version's JSON; Provisioning reads it at activation and
upgrade. Both check it with the same rules (`check_definition`), each with an id, a severity and a
message naming the field, like the feature validator's:

- S01  the definition's shape (pydantic: field types, slugs, semver, version ranges)
- S02  every member feature appears once
- S03  no member's table prefix or key prefix is a prefix of another's (their data never overlaps)
- S04  every member feature is installed (found through the `nno.features` entry points)
- S05  the installed version satisfies the member's version range
- S06  every resource kind a member declares is one the stack shares
- S07  the member's own package passes feature validation

S01-S03 are checked by the model itself; S04-S07 need the installed features (`check_features`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import semantic_version
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from nno.sdk.definition import D1_BINDING, KV_BINDING, R2_BINDING
from nno.sdk.validation import FEATURE_ID_RE, MAX_FEATURE_ID

TEMPLATE_NAME_PATTERN = r"^[a-z0-9-]+$"
RESOURCE_KINDS = ("d1", "r2", "kv")
BINDING_NAMES = {"d1": D1_BINDING, "r2": R2_BINDING, "kv": KV_BINDING}

ResourceKind = Literal["d1", "r2", "kv"]
FeatureId = Annotated[str, StringConstraints(pattern=FEATURE_ID_RE.pattern, max_length=MAX_FEATURE_ID)]
TemplateName = Annotated[str, StringConstraints(pattern=TEMPLATE_NAME_PATTERN, min_length=1, max_length=64)]
TablePrefix = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,46}_$")]
KeyPrefix = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,46}/$")]
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$", max_length=1024)]

Severity = Literal["error", "warning"]


def parse_version(value: str) -> semantic_version.Version:
    """A strict SemVer 2.0 version (`1.2.3`, `1.2.3-beta.1`); ValueError otherwise."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("a version is a semver string of at most 64 characters")
    return semantic_version.Version(value)


def parse_range(value: str) -> semantic_version.NpmSpec:
    """An npm-style version range (`*`, `^1.2.0`, `~1.2`, `>=1.0.0 <2.0.0`, `1.x`); ValueError otherwise."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or "\x00" in value:
        raise ValueError("a version range is a non-empty string of at most 64 characters")
    return semantic_version.NpmSpec(value)


def is_semver(value: str) -> bool:
    try:
        parse_version(value)
    except ValueError:
        return False
    return True


def semver_key(value: str) -> semantic_version.Version:
    """Sort key giving SemVer precedence (a pre-release sorts before its release)."""
    return parse_version(value)


def is_newer(candidate: str, than: str) -> bool:
    """Whether `candidate` has a higher SemVer precedence than `than` (False if either is not semver)."""
    if not (is_semver(candidate) and is_semver(than)):
        return False
    return parse_version(candidate) > parse_version(than)


def greatest(versions: Iterable[str]) -> str | None:
    """The greatest of some semver strings, by precedence; None when there are none."""
    valid = [v for v in versions if is_semver(v)]
    return max(valid, key=semver_key) if valid else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StackResources(_Model):
    """Which shared resources the stack creates, once, for all its members."""

    d1: bool = False
    r2: bool = False
    kv: bool = False

    def kinds(self) -> list[str]:
        return [kind for kind in RESOURCE_KINDS if getattr(self, kind)]


class StackFeature(_Model):
    """One member: a feature id, the versions the stack accepts, and where its data lives."""

    id: FeatureId
    version: Annotated[str, Field(max_length=64)] = "*"
    tablePrefix: TablePrefix | None = None
    keyPrefix: KeyPrefix | None = None
    # Which of the stack's shared resources the member's Worker is bound to (under the SDK's binding
    # names `DB`, `STORAGE`, `KV`); unset: all of them.
    bindings: list[ResourceKind] | None = None

    @field_validator("version")
    @classmethod
    def _range(cls, value: str) -> str:
        parse_range(value)
        return value

    @model_validator(mode="after")
    def _default_prefixes(self) -> StackFeature:
        # Stored definitions say which prefixes they use, so a later default cannot move data.
        if self.tablePrefix is None:
            object.__setattr__(self, "tablePrefix", self.id.replace("-", "_") + "_")
        if self.keyPrefix is None:
            object.__setattr__(self, "keyPrefix", self.id + "/")
        return self

    @property
    def table_prefix(self) -> str:
        return self.tablePrefix or self.id.replace("-", "_") + "_"

    @property
    def key_prefix(self) -> str:
        return self.keyPrefix or self.id + "/"

    def accepts(self, version: str) -> bool:
        try:
            return parse_range(self.version).match(parse_version(version))
        except ValueError:
            return False

    def bound_kinds(self, resources: StackResources) -> list[str]:
        """The shared resource kinds this member's Worker receives."""
        shared = resources.kinds()
        return shared if self.bindings is None else [k for k in shared if k in self.bindings]

    def shared_bindings(self, resources: StackResources) -> dict[str, str]:
        """Binding name -> resource kind, for the shared kinds this member receives."""
        return {BINDING_NAMES[kind]: kind for kind in self.bound_kinds(resources)}


class StackDefinition(_Model):
    """One version of a stack: its members and what they share (rules S01-S03 checked here)."""

    name: TemplateName | None = None
    version: Annotated[str, Field(max_length=64)] | None = None
    displayName: Annotated[Text, Field(max_length=128)] | None = None
    description: Text | None = None
    resources: StackResources = Field(default_factory=StackResources)
    # Empty: a platform-local stack of shared resources only, its features activated into it one by one.
    features: Annotated[list[StackFeature], Field(max_length=50)]

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str | None) -> str | None:
        if value is not None:
            parse_version(value)
        return value

    @model_validator(mode="after")
    def _members(self) -> StackDefinition:
        seen: set[str] = set()
        shared = set(self.resources.kinds())
        for index, feature in enumerate(self.features):
            if feature.id in seen:
                raise ValueError(f"S02 features[{index}].id: feature {feature.id!r} appears more than once")
            seen.add(feature.id)
            unshared = sorted(set(feature.bindings or ()) - shared)
            if unshared:
                raise ValueError(f"S01 features[{index}].bindings: {', '.join(unshared)} not shared by the stack")
        for label, prefixes in (("tablePrefix", [f.table_prefix for f in self.features]),
                                ("keyPrefix", [f.key_prefix for f in self.features])):
            for i, a in enumerate(prefixes):
                for j, b in enumerate(prefixes):
                    if i != j and b.startswith(a):
                        raise ValueError(f"S03 features[{j}].{label}: {b!r} overlaps {a!r} of "
                                         f"{self.features[i].id!r}; members' data must not overlap")
        return self

    def member(self, feature_id: str) -> StackFeature | None:
        return next((f for f in self.features if f.id == feature_id), None)

    def feature_ids(self) -> list[str]:
        return [f.id for f in self.features]


@dataclass(frozen=True)
class AvailableFeature:
    """What a stack check needs to know of an installed feature package."""

    id: str
    version: str
    resources: frozenset[str] = frozenset()  # the kinds (d1/r2/kv) it declares
    errors: tuple[str, ...] = ()  # its own validation's error messages (S07)


@dataclass(frozen=True)
class StackProblem:
    rule: str
    field: str
    message: str
    severity: Severity = "error"

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "field": self.field, "message": self.message}


@dataclass
class StackCheck:
    problems: list[StackProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def check_features(definition: StackDefinition, installed: Mapping[str, AvailableFeature]) -> StackCheck:
    """Rules S04-S07: the members against the installed feature packages."""
    check = StackCheck()
    for index, member in enumerate(definition.features):
        where = f"features[{index}]"
        found = installed.get(member.id)
        if found is None:
            check.problems.append(StackProblem("S04", f"{where}.id", f"feature {member.id!r} is not installed"))
            continue
        if not member.accepts(found.version):
            check.problems.append(StackProblem(
                "S05", f"{where}.version",
                f"feature {member.id!r} is installed at {found.version}, outside the range {member.version!r}"))
        missing = sorted(found.resources - set(member.bound_kinds(definition.resources)))
        if missing:
            check.problems.append(StackProblem(
                "S06", "resources",
                f"feature {member.id!r} declares {', '.join(missing)}, which the stack does not share with it"))
        for message in found.errors:
            check.problems.append(StackProblem("S07", f"{where}.id", f"feature {member.id!r}: {message}"))
    return check


def available_features() -> dict[str, AvailableFeature]:
    """The feature packages installed here (the `nno.features` entry points), as stack checks see them."""
    from nno.sdk.discovery import discover_features
    from nno.sdk.validation import validate_feature

    found: dict[str, AvailableFeature] = {}
    for name, installed in discover_features().items():
        report = validate_feature(installed)
        errors = tuple(f"{f.rule} {f.field}: {f.message}" for f in report.errors)
        definition = installed.definition
        if definition is None:
            found[name] = AvailableFeature(name, "0.0.0", errors=errors)
            continue
        found[name] = AvailableFeature(name, definition.version, frozenset(definition.resources.declared()), errors)
    return found


def parse_definition(data: Any) -> StackDefinition:
    """A definition from stored or received JSON (pydantic's ValidationError when it breaks S01-S03)."""
    return StackDefinition.model_validate(data)
