"""The feature contract: what a feature package declares (`FeatureDefinition`, runtime behaviour)
and how it loads (`FeatureManifest`, loading metadata), after the SDK page of the docs
(provisioning-stacks.md §8.2-8.3, DECISIONS 17).

The models accept anything of the right shape; the rules a package must meet (slug ids, semver,
permission keys `{id}:{action}`, ...) are checked by `nno.sdk.validation`, which reports every
broken rule by number instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from nno.sdk.env import FeatureEnv

# Binding names a feature Worker's resources get (the same in a stack, where they are shared).
D1_BINDING = "DB"
R2_BINDING = "STORAGE"
KV_BINDING = "KV"
# The secret carrying the Worker's feature configuration (FeatureConfig as JSON).
CONFIG_SECRET = "NNO_FEATURE_CONFIG"
# Placeholder in migration SQL replaced by the feature's table prefix (empty when standalone).
TABLE_PREFIX_PLACEHOLDER = "{{prefix}}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)


class FeatureRoute(_Model):
    """A screen of the feature, served by its Worker at `path` (relative to the feature's host)."""

    path: str
    component: str | None = None  # the template (or handler) rendering it
    title: str | None = None
    permission: str | None = None  # the permission key needed to open it (one of `permissions`)


class FeatureNavItem(_Model):
    """A sidebar item; the console shell sorts siblings by `order` (lower first)."""

    label: str
    path: str
    icon: str | None = None
    order: int = 100
    permission: str | None = None
    children: list[FeatureNavItem] = Field(default_factory=list)


class FeaturePermission(_Model):
    """`key` is `{featureId}:{action}` (rule V06). `required`: needed to use the feature at all, so
    every member of an organization holds it by default; the others are granted by role."""

    key: str
    label: str
    required: bool = False
    description: str | None = None


class FeatureResources(_Model):
    """What the feature needs provisioned (lazily, at activation). Bound as `DB`, `STORAGE`, `KV`."""

    d1: bool = False
    r2: bool = False
    kv: bool = False

    def declared(self) -> list[str]:
        return [k for k in ("d1", "r2", "kv") if getattr(self, k)]


class FeatureManifest(_Model):
    """Build-time loading metadata (the docs' `featureManifest`)."""

    id: str
    name: str
    package: str  # the Python distribution name
    enabledByDefault: bool = False
    loadPriority: int = 100
    lazyLoad: bool = True
    environment: Literal["all", "dev", "stg", "prod"] = "all"
    domain: str = "general"
    type: Literal["core", "domain", "business", "client"] = "client"


LifecycleName = Literal["activate", "deactivate", "upgrade"]


@dataclass(frozen=True)
class LifecycleEvent:
    """What a lifecycle hook receives. `previous_version` is set on upgrade; `delete_data` on a
    deactivation that also removes the feature's data."""

    name: LifecycleName
    env: FeatureEnv
    previous_version: str | None = None
    delete_data: bool = False


# A hook receives a LifecycleEvent and returns None or an awaitable.
Hook = Callable[[LifecycleEvent], Awaitable[None] | None]
# The backend Worker: (FeatureEnv) -> an ASGI app (or an awaitable of one), built from the Worker's env
# (its D1/R2/KV bindings and config). Typed loosely so the model needs no runtime import of the env.
WorkerAppFactory = Callable[..., Any]


class FeatureHooks(_Model):
    """Run inside the feature's Worker by provisioning: after migrations on activate and upgrade,
    before the resources are removed on deactivate."""

    on_activate: Hook | None = None
    on_deactivate: Hook | None = None
    on_upgrade: Hook | None = None

    def for_event(self, name: LifecycleName) -> Hook | None:
        hook: Hook | None = getattr(self, f"on_{name}")
        return hook


class FeatureDefinition(_Model):
    """A feature package's runtime contract. The documented fields keep the docs' (camelCase) names."""

    id: str
    version: str
    displayName: str
    description: str
    icon: str | None = None
    routes: list[FeatureRoute] = Field(default_factory=list)
    navigation: list[FeatureNavItem] = Field(default_factory=list)
    permissions: list[FeaturePermission] = Field(default_factory=list)
    requiresService: bool = False
    serviceEnvKey: str | None = None
    # Backend: what provisioning creates and runs for the feature.
    resources: FeatureResources = Field(default_factory=FeatureResources)
    migrations: Path | None = None  # a directory of plain SQL files `NNNN_name.sql`, applied in order
    worker: WorkerAppFactory | None = None
    templates: Path | None = None  # Jinja2 templates of its screens (rendered by its Worker)
    static: Path | None = None  # files served at /static/ by its Worker
    hooks: FeatureHooks = Field(default_factory=FeatureHooks)
    manifest: FeatureManifest | None = None  # derived from the definition when omitted

    def permission_keys(self) -> list[str]:
        return [p.key for p in self.permissions]

    def required_permissions(self) -> list[str]:
        return [p.key for p in self.permissions if p.required]


class ShellUser(_Model):
    id: str
    email: str
    name: str | None = None
    role: str | None = None


class ShellStack(_Model):
    id: str
    name: str
    isDefault: bool = False
    templateId: str | None = None


class ShellNavLink(_Model):
    label: str
    href: str  # relative to the context's shellUrl (through the shell's permission gate)


class ShellNavGroup(_Model):
    """One feature's sidebar items the user may see, in the shell's order."""

    featureId: str
    label: str
    items: list[ShellNavLink] = Field(default_factory=list)


class ShellContext(_Model):
    """What the console shell hands each feature page, signed (`nno.sdk.shell`): the platform, the
    active tenant (organization), stack, user, their permissions, the features' service URLs, and
    the shell's sidebar for this user (so a feature page draws the same frame)."""

    platformId: str
    tenantId: str | None = None
    stack: ShellStack | None = None
    user: ShellUser | None = None
    permissions: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)
    platformName: str | None = None
    shellUrl: str | None = None  # where the console shell is (its home)
    services: dict[str, str] = Field(default_factory=dict)  # featureId -> the feature's service URL
    tenantName: str | None = None
    icon: str | None = None  # the platform's icon, relative to shellUrl (or an absolute URL)
    nav: list[ShellNavGroup] = Field(default_factory=list)


FeatureNavItem.model_rebuild()
