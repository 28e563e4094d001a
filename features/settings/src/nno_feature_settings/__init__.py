"""Settings: the platform's settings (its admins) and each tenant's (its owners and admins), and
the effective settings a tenant sees (the tenant's value over the platform's default)."""

from __future__ import annotations

from pathlib import Path

from nno.sdk import (
    FeatureDefinition,
    FeatureManifest,
    FeatureNavItem,
    FeaturePermission,
    FeatureResources,
    FeatureRoute,
)

HERE = Path(__file__).parent


def _worker(env):  # type: ignore[no-untyped-def]
    from nno_feature_settings.app import create_worker_app

    return create_worker_app(env)


definition = FeatureDefinition(
    id="settings",
    version="1.0.0",
    displayName="Settings",
    description="Platform and tenant settings: name, contact, branding, locale and time zone",
    icon="settings",
    routes=[FeatureRoute(path="/", component="settings/settings.html", title="Settings", permission="settings:read")],
    navigation=[FeatureNavItem(label="Settings", path="/", icon="settings", order=90, permission="settings:read")],
    permissions=[
        FeaturePermission(key="settings:read", label="See the settings", required=True),
        FeaturePermission(key="settings:tenant-manage", label="Change the organization's settings"),
    ],
    requiresService=True,
    serviceEnvKey="SETTINGS_API_URL",
    resources=FeatureResources(d1=True),
    migrations=HERE / "migrations",
    worker=_worker,
    templates=HERE / "templates",
    manifest=FeatureManifest(id="settings", name="Settings", package="nno-feature-settings", enabledByDefault=True,
                             loadPriority=90, domain="platform", type="core"),
)
