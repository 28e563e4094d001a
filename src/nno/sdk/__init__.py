"""The NNO feature SDK: the only NNO module a feature package imports.

A feature is a Python distribution registering a `FeatureDefinition` under the `nno.features`
entry-point group. It declares its screens (routes, navigation), permissions, the resources it
needs (D1, R2, KV, created lazily when it is activated), its SQL migrations, its Worker (an ASGI app
factory receiving a `FeatureEnv`) with Jinja2 + htmx templates, and lifecycle hooks.
See docs/features.md.
"""

from nno.sdk.definition import (
    CONFIG_SECRET,
    D1_BINDING,
    KV_BINDING,
    R2_BINDING,
    FeatureDefinition,
    FeatureHooks,
    FeatureManifest,
    FeatureNavItem,
    FeaturePermission,
    FeatureResources,
    FeatureRoute,
    LifecycleEvent,
    ShellContext,
    ShellStack,
    ShellUser,
)
from nno.sdk.discovery import ENTRY_POINT_GROUP, FeatureLoadError, InstalledFeature, discover_features, get_feature
from nno.sdk.env import AuthClient, D1Database, FeatureConfig, FeatureEnv, PrefixedKV, PrefixedR2, ServiceResponse
from nno.sdk.migrations import MigrationError, apply_migrations
from nno.sdk.validation import (
    FEATURE_ID_RE,
    RULES,
    SEMVER_RE,
    Finding,
    ValidationReport,
    parse_semver,
    permission_key_re,
    validate_feature,
)
from nno.sdk.web import (
    FeatureUser,
    create_feature_app,
    current_user,
    optional_user,
    render,
    require_permission,
    require_tenant,
)

__all__ = [
    "CONFIG_SECRET",
    "D1_BINDING",
    "ENTRY_POINT_GROUP",
    "FEATURE_ID_RE",
    "KV_BINDING",
    "R2_BINDING",
    "RULES",
    "SEMVER_RE",
    "AuthClient",
    "D1Database",
    "FeatureConfig",
    "FeatureDefinition",
    "FeatureEnv",
    "FeatureHooks",
    "FeatureLoadError",
    "FeatureManifest",
    "FeatureNavItem",
    "FeaturePermission",
    "FeatureResources",
    "FeatureRoute",
    "FeatureUser",
    "Finding",
    "InstalledFeature",
    "LifecycleEvent",
    "MigrationError",
    "PrefixedKV",
    "PrefixedR2",
    "ServiceResponse",
    "ShellContext",
    "ShellStack",
    "ShellUser",
    "ValidationReport",
    "apply_migrations",
    "create_feature_app",
    "current_user",
    "discover_features",
    "get_feature",
    "optional_user",
    "parse_semver",
    "permission_key_re",
    "render",
    "require_permission",
    "require_tenant",
    "validate_feature",
]
