"""The shell's build: a pure function from a platform's configuration and its active features to
the files of its Pages site. Provisioning (and later the CLI Service, through the platform
repository) calls it; the local cloud publishes the files; the edge serves them and runs the site's
function (`_worker.json`) for every path that is not a static asset."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The rule itself lives in the kernel, shared with the Registry's platform icon.
from nno.kernel.icons import MAX_ICON_BYTES as MAX_ICON_BYTES
from nno.kernel.icons import check_icon as check_icon
from nno.kernel.icons import icon_upload as _icon_upload
from nno.sdk.definition import FeatureDefinition, FeatureNavItem, FeaturePermission, FeatureRoute

STATIC_PREFIX = "_shell/static/"
CONFIG_PATH = "_shell/config.json"
WORKER_MARKER = "_worker.json"
FUNCTION_KIND = "console"
SDK_STATIC = Path(__file__).parent.parent / "sdk" / "static"
SHELL_STATIC = Path(__file__).parent / "static"
# Shipped once in the SDK; the shell copies it into each site instead of keeping a second copy.
VENDORED = {"htmx.min.js": SDK_STATIC / "htmx.min.js", "htmx.LICENSE": SDK_STATIC / "htmx.LICENSE"}
ICON_DEFAULT = "icon.svg"
_PALETTE = ("#2b59c3", "#067647", "#b54708", "#7a2e98", "#c01048", "#0e7090", "#344054", "#9e5200")


def initials(name: str) -> str:
    """Up to two letters naming the platform: the first letters of its first two words."""
    words = [w for w in re.split(r"[^\w]+", name) if w]
    letters = "".join(w[0] for w in words[:2]) or "?"
    return letters.upper()


def initials_icon(name: str) -> bytes:
    """The default icon: the platform's initials on a colour picked from its name. Every character is
    escaped, and nothing but text and a rectangle is drawn, so no name makes it unsafe."""
    text = "".join(f"&#{ord(c)};" for c in initials(name))
    colour = _PALETTE[hashlib.sha256(name.encode()).digest()[0] % len(_PALETTE)]
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
           f'<rect width="64" height="64" rx="14" fill="{colour}"/>'
           '<text x="32" y="33" dy=".35em" text-anchor="middle" fill="#fff" '
           'font-family="system-ui,-apple-system,Segoe UI,sans-serif" font-size="28" font-weight="700">'
           f"{text}</text></svg>")
    return svg.encode()


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
    icon: str | None = None  # an https URL or an uploaded image (data URL); None: initials
    features: list[ShellFeature] = Field(default_factory=list)

    @field_validator("icon")
    @classmethod
    def _check_icon(cls, value: str | None) -> str | None:
        return check_icon(value)

    @property
    def icon_origin(self) -> str | None:
        """The origin the shell's CSP must allow images from (an icon URL), else None."""
        if self.icon and self.icon.startswith("https://"):
            parts = urlsplit(self.icon)
            return f"https://{parts.netloc}"
        return None

    def icon_path(self) -> str:
        """Where the header and favicon load the icon from: the site's own file, or the URL."""
        if self.icon and self.icon.startswith("https://"):
            return self.icon
        upload = _icon_upload(self.icon) if self.icon else None
        return "/" + STATIC_PREFIX + (f"icon.{upload[0]}" if upload else ICON_DEFAULT)


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
    files[STATIC_PREFIX + ICON_DEFAULT] = initials_icon(cfg.name)
    upload = _icon_upload(cfg.icon) if cfg.icon else None
    if upload is not None:
        files[f"{STATIC_PREFIX}icon.{upload[0]}"] = upload[1]
    return files


def read_config(files_or_text: bytes | str) -> ShellConfig:
    return ShellConfig.model_validate_json(files_or_text)
