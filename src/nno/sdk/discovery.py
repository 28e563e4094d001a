"""Installed feature packages: Python distributions registering under the `nno.features`
entry-point group (DECISIONS 14, 17), e.g. in a feature's pyproject.toml:

    [project.entry-points."nno.features"]
    tasks = "nno_feature_tasks:definition"

The entry point's name is the feature id; its value is a `FeatureDefinition` (or a module with a
`definition` attribute). A package that does not load is still listed, with the error, so the
validator can report it (rule V01) instead of the feature silently vanishing.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from nno.sdk.definition import FeatureDefinition, FeatureManifest

ENTRY_POINT_GROUP = "nno.features"


@dataclass(frozen=True)
class InstalledFeature:
    name: str  # the entry point's name (must equal the definition's id, rule V03)
    value: str  # "module:attr"
    distribution: str | None
    distribution_version: str | None
    definition: FeatureDefinition | None
    error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.definition is not None

    @property
    def manifest(self) -> FeatureManifest | None:
        d = self.definition
        if d is None:
            return None
        if d.manifest is not None:
            return d.manifest
        return FeatureManifest(id=d.id, name=d.displayName, package=self.distribution or self.value.split(":")[0],
                               domain=d.id)

    def require(self) -> FeatureDefinition:
        if self.definition is None:
            raise FeatureLoadError(self.name, self.error or "not loaded")
        return self.definition


class FeatureLoadError(Exception):
    def __init__(self, feature: str, reason: str) -> None:
        self.feature, self.reason = feature, reason
        super().__init__(f"feature package {feature!r} does not load: {reason}")


def load_entry_point(ep: EntryPoint) -> InstalledFeature:
    dist = getattr(ep, "dist", None)
    dist_name = dist.metadata["Name"] if dist is not None else None
    dist_version = dist.version if dist is not None else None
    try:
        target = ep.load()
        if inspect.ismodule(target):
            target = getattr(target, "definition", None)
        if not isinstance(target, FeatureDefinition):
            raise TypeError(f"{ep.value} is a {type(target).__name__}, not a nno.sdk.FeatureDefinition")
    except Exception as exc:  # any import or construction error of third-party code
        return InstalledFeature(ep.name, ep.value, dist_name, dist_version, None, f"{type(exc).__name__}: {exc}")
    return InstalledFeature(ep.name, ep.value, dist_name, dist_version, target)


def discover_features() -> dict[str, InstalledFeature]:
    """Every feature package installed in this environment, by entry-point name."""
    found: dict[str, InstalledFeature] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:  # the first on sys.path wins, as for imports
            found[ep.name] = load_entry_point(ep)
    return dict(sorted(found.items()))


def get_feature(feature_id: str) -> InstalledFeature | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=feature_id):
        return load_entry_point(ep)
    return None
