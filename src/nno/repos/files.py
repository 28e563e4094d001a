"""The platform repository's four files, in this project's own format (TOML):

- `features.config.toml` the active features (generated: the service rewrites it on every change)
- `pyproject.toml`       the package manifest: the platform project and its feature packages
- `env.config.toml`      the environments and the addresses the console talks to
- `auth.config.toml`     the platform's auth Worker

`render_*` write them; `parse_repo` reads a checkout back and refuses anything malformed, which is
what makes a build fail (and leave the last good site serving).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import tomli_w

FEATURES = "features.config.toml"
MANIFEST = "pyproject.toml"
ENV = "env.config.toml"
AUTH = "auth.config.toml"
FILES = (FEATURES, MANIFEST, ENV, AUTH)
GENERATED_HEADER = (
    "# Generated file, do not edit: the NNO CLI Service rewrites it on every feature activation and\n"
    "# deactivation (POST /api/v1/cli/platforms/{id}/features/activate|deactivate).\n"
)
FEATURE_ID_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$")
ENVIRONMENTS = ("dev", "stg", "prod")


class RepoConfigError(ValueError):
    """A repository file the build cannot use."""


@dataclass(frozen=True)
class Feature:
    id: str
    version: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RepoConfig:
    platform_id: str
    display_name: str
    plan_tier: str
    base_domain: str
    environments: tuple[str, ...]
    auth_worker: str
    features: tuple[Feature, ...]


def _hostname(service: str, kind: str, platform_id: str, base: str, env: str) -> str:
    return ".".join([service, kind, *(["stg"] if env == "stg" else []), "default", platform_id, base])


def auth_url(platform_id: str, base: str, env: str) -> str:
    return "http://" + _hostname("auth", "svc", platform_id, base, env)


def console_url(platform_id: str, base: str, env: str) -> str:
    return "http://" + _hostname("console", "app", platform_id, base, env)


def feature_url(feature_id: str, platform_id: str, base: str, env: str) -> str:
    return "http://" + _hostname(feature_id, "svc", platform_id, base, env)


def _drop_nulls(value: Any) -> Any:
    """TOML has no null: an unset value is an absent key (lists drop their nulls too)."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value if v is not None]
    return value


def render_features(platform_id: str, features: list[Feature]) -> bytes:
    body = {"platformId": platform_id,
            "features": [{"id": f.id, "version": f.version, "config": _drop_nulls(f.config)} for f in
                         sorted(features, key=lambda f: f.id)]}
    return (GENERATED_HEADER + "\n" + tomli_w.dumps(body)).encode()


def initial_files(platform_id: str, display_name: str, plan_tier: str, base_domain: str) -> dict[str, bytes]:
    manifest = {"project": {"name": f"nno-platform-{platform_id}", "version": "0.1.0",
                            "description": f"NNO platform {display_name}", "dependencies": []},
                "tool": {"nno": {"platformId": platform_id, "displayName": display_name, "planTier": plan_tier}}}
    env = {"platformId": platform_id, "baseDomain": base_domain,
           "environments": {e: {"authUrl": auth_url(platform_id, base_domain, e)} for e in ENVIRONMENTS}}
    auth = {"platformId": platform_id, "worker": f"{platform_id}-default-auth",
            "providers": ["email-password", "magic-link"]}
    return {FEATURES: render_features(platform_id, []), MANIFEST: tomli_w.dumps(manifest).encode(),
            ENV: tomli_w.dumps(env).encode(), AUTH: tomli_w.dumps(auth).encode()}


def _load(files: dict[str, bytes], name: str) -> dict[str, Any]:
    if name not in files:
        raise RepoConfigError(f"{name} is missing")
    try:
        return tomllib.loads(files[name].decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RepoConfigError(f"{name} is not valid TOML: {exc}") from exc


def _features(data: dict[str, Any]) -> list[Feature]:
    raw = data.get("features", [])
    if not isinstance(raw, list):
        raise RepoConfigError(f"{FEATURES}: `features` must be an array of tables")
    out: list[Feature] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise RepoConfigError(f"{FEATURES}: each feature must be a table")
        fid, version, config = item.get("id"), item.get("version"), item.get("config", {})
        if not isinstance(fid, str) or not FEATURE_ID_RE.match(fid):
            raise RepoConfigError(f"{FEATURES}: invalid feature id {fid!r}")
        if fid in seen:
            raise RepoConfigError(f"{FEATURES}: feature {fid} is listed twice")
        if not isinstance(version, str) or not VERSION_RE.match(version):
            raise RepoConfigError(f"{FEATURES}: feature {fid} has an invalid version {version!r}")
        if not isinstance(config, dict):
            raise RepoConfigError(f"{FEATURES}: feature {fid}'s config must be a table")
        seen.add(fid)
        out.append(Feature(fid, version, config))
    return out


def parse_features(files: dict[str, bytes]) -> list[Feature]:
    return _features(_load(files, FEATURES))


def parse_repo(files: dict[str, bytes], platform_id: str) -> RepoConfig:
    features = _load(files, FEATURES)
    manifest = _load(files, MANIFEST)
    env = _load(files, ENV)
    auth = _load(files, AUTH)
    for name, data in ((FEATURES, features), (ENV, env), (AUTH, auth)):
        if data.get("platformId") != platform_id:
            raise RepoConfigError(f"{name}: platformId must be {platform_id}")
    nno = manifest.get("tool", {}).get("nno", {}) if isinstance(manifest.get("tool"), dict) else {}
    if not isinstance(nno, dict) or nno.get("platformId") != platform_id:
        raise RepoConfigError(f"{MANIFEST}: [tool.nno] platformId must be {platform_id}")
    envs = env.get("environments")
    if not isinstance(envs, dict) or not envs or any(e not in ENVIRONMENTS for e in envs):
        raise RepoConfigError(f"{ENV}: [environments] must name some of {', '.join(ENVIRONMENTS)}")
    base = env.get("baseDomain")
    worker = auth.get("worker")
    if not isinstance(base, str) or not base:
        raise RepoConfigError(f"{ENV}: baseDomain is required")
    if not isinstance(worker, str) or not worker:
        raise RepoConfigError(f"{AUTH}: worker is required")
    return RepoConfig(platform_id=platform_id, display_name=str(nno.get("displayName") or platform_id),
                      plan_tier=str(nno.get("planTier") or ""), base_domain=base,
                      environments=tuple(envs), auth_worker=worker, features=tuple(_features(features)))


def with_changes(files: dict[str, bytes], platform_id: str, activate: list[Feature],
                 deactivate: list[str]) -> dict[str, bytes]:
    """The changed files (the features config and the manifest) for activating and deactivating
    several features at once, so they land in one commit."""
    dropped = set(deactivate) | {f.id for f in activate}
    current = [f for f in parse_features(files) if f.id not in dropped]
    features = [*current, *activate]
    return {FEATURES: render_features(platform_id, features), MANIFEST: _manifest_deps(files, features)}


def with_feature(files: dict[str, bytes], platform_id: str, feature: Feature) -> dict[str, bytes]:
    return with_changes(files, platform_id, [feature], [])


def without_feature(files: dict[str, bytes], platform_id: str, feature_id: str) -> dict[str, bytes]:
    return with_changes(files, platform_id, [], [feature_id])


def _manifest_deps(files: dict[str, bytes], features: list[Feature]) -> bytes:
    manifest = _load(files, MANIFEST)
    project = manifest.setdefault("project", {})
    project["dependencies"] = [f"nno-feature-{f.id}=={f.version}" for f in sorted(features, key=lambda f: f.id)]
    return tomli_w.dumps(manifest).encode()
