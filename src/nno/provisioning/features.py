"""Which installed feature package a job deploys, refused up front when there is none or it is not
valid (the same `nno.sdk.validation` rules as `nno feature validate`), and checked again when the
job runs (the package may have changed in between).

Version rule: a request for `featureVersion` X is served by the installed version when that is
semver-compatible with X (same major version, not older), or when X is `latest`; the Registry then
records the installed version.
"""

from __future__ import annotations

from typing import Any

from nno.kernel.errors import NNOError
from nno.sdk.discovery import InstalledFeature, discover_features, get_feature
from nno.sdk.validation import parse_semver, validate_feature

__all__ = ["LATEST", "FeatureRefused", "activatable", "compatible", "discover_features", "get_feature",
           "installed_feature", "summary"]

LATEST = "latest"


def compatible(installed: str, requested: str) -> bool:
    if requested == LATEST:
        return True
    have, want = parse_semver(installed), parse_semver(requested)
    if have is None or want is None:
        return False
    return have[0] == want[0] and have >= want


class FeatureRefused(Exception):
    """Why a feature cannot be activated: `status`, `code`, `message`, `details`."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        self.status, self.code, self.message, self.details = status, code, message, details
        super().__init__(message)

    def as_nno_error(self) -> NNOError:
        return NNOError(self.status, self.code, self.message, self.details)


def installed_feature(feature_id: str) -> InstalledFeature:
    found = get_feature(feature_id)
    if found is None:
        raise FeatureRefused(404, "FEATURE_NOT_FOUND",
                             f"No feature package {feature_id!r} is installed (nno.features entry points)",
                             {"featureId": feature_id})
    return found


def activatable(feature_id: str, requested_version: str = LATEST) -> InstalledFeature:
    """The installed package for an activation, or FeatureRefused (404 unknown, 422 invalid, 409
    another version)."""
    found = installed_feature(feature_id)
    report = validate_feature(found)
    if not report.ok:
        raise FeatureRefused(422, "INVALID_FEATURE_PACKAGE",
                             f"Feature package {feature_id!r} breaks {len(report.errors)} validation rule(s)",
                             {"featureId": feature_id, "findings": [f.as_dict() for f in report.errors]})
    definition = found.require()
    if not compatible(definition.version, requested_version):
        raise FeatureRefused(409, "FEATURE_VERSION_UNAVAILABLE",
                             f"Feature {feature_id} {requested_version} is not installed "
                             f"(installed: {definition.version})",
                             {"featureId": feature_id, "requested": requested_version,
                              "installed": definition.version})
    return found


def summary(found: InstalledFeature, *, detail: bool = False) -> dict[str, Any]:
    """How the API shows an installed package (validation findings with `detail`)."""
    report = validate_feature(found)
    d = found.definition
    out: dict[str, Any] = {
        "id": found.name, "version": d.version if d else None, "displayName": d.displayName if d else None,
        "description": d.description if d else None, "icon": d.icon if d else None,
        "distribution": found.distribution, "distributionVersion": found.distribution_version,
        "valid": report.ok, "errors": len(report.errors), "warnings": len(report.warnings),
        "resources": d.resources.declared() if d else [],
        "permissions": [p.model_dump() for p in d.permissions] if d else [],
    }
    if detail:
        out["findings"] = [f.as_dict() for f in report.findings]
        out["manifest"] = found.manifest.model_dump() if found.manifest else None
        out["routes"] = [r.model_dump() for r in d.routes] if d else []
        out["navigation"] = [n.model_dump() for n in d.navigation] if d else []
    return out
