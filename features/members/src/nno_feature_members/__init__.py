"""Members: the people of each tenant (organization) on the platform's auth Worker, their roles and
invitations, and the platform's admins. It keeps no data of its own: every read and change is a call
to the auth Worker's API as the signed-in user, so the auth Worker's rules decide what is allowed."""

from __future__ import annotations

from pathlib import Path

from nno.sdk import FeatureDefinition, FeatureManifest, FeatureNavItem, FeaturePermission, FeatureRoute

HERE = Path(__file__).parent


def _worker(env):  # type: ignore[no-untyped-def]
    from nno_feature_members.app import create_worker_app

    return create_worker_app(env)


definition = FeatureDefinition(
    id="members",
    version="1.0.0",
    displayName="Members",
    description="Users, roles and invitations of each tenant, and the platform's admins",
    icon="users",
    routes=[
        FeatureRoute(path="/", component="members/members.html", title="Members", permission="members:read"),
        FeatureRoute(path="/invitations", component="members/invitations.html", title="My invitations"),
        FeatureRoute(path="/platform", component="members/platform.html", title="Platform admins"),
    ],
    navigation=[
        FeatureNavItem(label="Members", path="/", icon="users", order=10, permission="members:read"),
        FeatureNavItem(label="My invitations", path="/invitations", icon="mail", order=11),
        FeatureNavItem(label="Platform admins", path="/platform", icon="shield", order=12),
    ],
    permissions=[
        FeaturePermission(key="members:read", label="See the organization's members", required=True),
        FeaturePermission(key="members:manage", label="Invite, remove and change roles of members"),
    ],
    requiresService=True,
    serviceEnvKey="MEMBERS_API_URL",
    worker=_worker,
    templates=HERE / "templates",
    manifest=FeatureManifest(id="members", name="Members", package="nno-feature-members", enabledByDefault=True,
                             loadPriority=10, domain="platform", type="core"),
)
