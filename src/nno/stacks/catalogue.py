"""The built-in catalogue: templates NNO ships, seeded into the Stack Registry on first start.

Seeding adds what is missing and never changes what is there, so an operator's edits (a new
description, a deprecation) survive restarts, and a release that adds a version adds just that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BuiltinVersion:
    version: str
    definition: dict[str, Any]
    changelog: str


@dataclass(frozen=True)
class BuiltinTemplate:
    name: str
    display_name: str
    description: str
    icon: str
    domain: str
    versions: tuple[BuiltinVersion, ...]


SAAS_STARTER = BuiltinTemplate(
    name="saas-starter",
    display_name="SaaS Starter Stack",
    description="Platform and tenant settings, members with roles and invitations, and a per-tenant "
                "task tracker, sharing one database.",
    icon="rocket",
    domain="saas",
    versions=(
        BuiltinVersion(
            version="1.0.0",
            definition={
                "resources": {"d1": True},
                "features": [
                    {"id": "settings", "version": ">=0.1.0 <2.0.0"},
                    {"id": "members", "version": ">=0.1.0 <2.0.0"},
                    {"id": "tasks", "version": ">=0.1.0 <2.0.0"},
                ],
            },
            changelog="First release: settings, members and tasks.",
        ),
    ),
)

TEAM_WORKSPACE = BuiltinTemplate(
    name="team-workspace",
    display_name="Team Workspace",
    description="Members with roles and invitations, and a per-tenant task tracker on one shared database.",
    icon="users",
    domain="productivity",
    versions=(
        BuiltinVersion(
            version="1.0.0",
            definition={
                "resources": {"d1": True},
                "features": [
                    {"id": "members", "version": ">=0.1.0 <2.0.0"},
                    {"id": "tasks", "version": ">=0.1.0 <2.0.0"},
                ],
            },
            changelog="First release: members and tasks.",
        ),
    ),
)

BUILTIN: tuple[BuiltinTemplate, ...] = (SAAS_STARTER, TEAM_WORKSPACE)
