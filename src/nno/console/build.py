"""The shell's build: a pure function from a platform's configuration and its active features to
the files of its Pages site. Provisioning (and later the CLI Service, through the platform
repository) calls it; the local cloud publishes the files; the edge serves them and runs the site's
function (`_worker.json`) for every path that is not a static asset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nno.sdk.definition import FeatureDefinition, FeatureNavItem, FeaturePermission, FeatureRoute

STATIC_PREFIX = "_shell/static/"
CONFIG_PATH = "_shell/config.json"
WORKER_MARKER = "_worker.json"
FUNCTION_KIND = "console"
SDK_STATIC = Path(__file__).parent.parent / "sdk" / "static"
SHELL_STATIC = Path(__file__).parent / "static"
# Shipped once in the SDK; the shell copies it into each site instead of keeping a second copy.
VENDORED = {"htmx.min.js": SDK_STATIC / "htmx.min.js", "htmx.LICENSE": SDK_STATIC / "htmx.LICENSE"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShellFeature(_Model):
    """What the shell needs of one active feature: its screens, sidebar and permission gates."""

    id: str
    version: str
    displayName: str
    description: str = ""
    icon: str | None = None
    stackId: str = "default"
    url: str  # the feature's service URL (its Worker's host)
    navigation: list[FeatureNavItem] = Field(default_factory=list)
    routes: list[FeatureRoute] = Field(default_factory=list)
    permissions: list[FeaturePermission] = Field(default_factory=list)

    @classmethod
    def from_definition(cls, definition: FeatureDefinition, *, url: str, stack_id: str = "default") -> ShellFeature:
        return cls(id=definition.id, version=definition.version, displayName=definition.displayName,
                   description=definition.description, icon=definition.icon, stackId=stack_id, url=url,
                   navigation=list(definition.navigation), routes=list(definition.routes),
                   permissions=list(definition.permissions))


class ShellConfig(_Model):
    """The platform's side of the build (the docs' env.config.ts / auth.config.ts)."""

    platformId: str
    name: str
    environment: str = "dev"
    authWorker: str  # the auth Worker's name (the site's service binding)
    authUrl: str
    consoleUrl: str | None = None
    icon: str | None = None
    features: list[ShellFeature] = Field(default_factory=list)


def build_console_site(config: ShellConfig | dict[str, Any], features: list[ShellFeature] | None = None
                       ) -> dict[str, bytes]:
    """{path: content} of the platform's console site. Features are ordered by their first
    sidebar item (`order`, then name) so the same inputs always give the same bytes."""
    cfg = config if isinstance(config, ShellConfig) else ShellConfig.model_validate(config)
    chosen = list(features if features is not None else cfg.features)
    chosen.sort(key=lambda f: (min((n.order for n in f.navigation), default=1000), f.displayName, f.id))
    cfg = cfg.model_copy(update={"features": chosen})
    files: dict[str, bytes] = {
        CONFIG_PATH: json.dumps(cfg.model_dump(mode="json"), indent=1, sort_keys=True).encode(),
        WORKER_MARKER: json.dumps({"kind": FUNCTION_KIND}).encode(),
    }
    for name, path in VENDORED.items():
        files[STATIC_PREFIX + name] = path.read_bytes()
    for path in sorted(SHELL_STATIC.iterdir()):
        if path.is_file():
            files[STATIC_PREFIX + path.name] = path.read_bytes()
    return files


def read_config(files_or_text: bytes | str) -> ShellConfig:
    return ShellConfig.model_validate_json(files_or_text)
