"""Installed feature packages: Python distributions registering under the `nno.features`
entry-point group (DECISIONS 14, 17), e.g. in a feature's pyproject.toml:

    [project.entry-points."nno.features"]
    tasks = "nno_feature_tasks:definition"

The entry point's name is the feature id; its value is a `FeatureDefinition` (or a module with a
`definition` attribute). A package that does not load is still listed, with the error, so the
validator can report it (rule V01) instead of the feature silently vanishing.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

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


def load_from_directory(directory: Path) -> list[InstalledFeature]:
    """The features a package directory (not installed yet) declares in its pyproject.toml, imported
    from its `src/` (or the directory itself): what `nno feature validate PATH` checks."""
    pyproject = directory / "pyproject.toml"
    try:
        meta = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FeatureLoadError(str(directory), f"cannot read {pyproject}: {exc}") from exc
    project = meta.get("project") or {}
    declared = (project.get("entry-points") or {}).get(ENTRY_POINT_GROUP) or {}
    if not declared:
        raise FeatureLoadError(str(directory), f'{pyproject} declares no [project.entry-points."{ENTRY_POINT_GROUP}"]')
    root = (directory / "src" if (directory / "src").is_dir() else directory).resolve()
    _forget_modules(root)  # a module imported from here before would hide edits made since
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        found = []
        for name, value in sorted(declared.items()):
            ep = EntryPoint(name=name, value=str(value), group=ENTRY_POINT_GROUP)
            loaded = load_entry_point(ep)
            found.append(InstalledFeature(loaded.name, loaded.value, project.get("name"), project.get("version"),
                                          loaded.definition, loaded.error))
        return found
    finally:
        sys.path.remove(str(root))
        _forget_modules(root)


def _forget_modules(root: Path) -> None:
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(root):
            del sys.modules[name]
