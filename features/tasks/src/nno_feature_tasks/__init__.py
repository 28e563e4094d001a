"""Tasks: a small project and task tracker, one list per tenant (the user's active organization).

An NNO feature package: it imports only `nno.sdk`, registers under the `nno.features` entry points
and keeps its data in its D1 (tables created by its SQL migrations).
"""

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
    from nno_feature_tasks.app import create_worker_app

    return create_worker_app(env)


definition = FeatureDefinition(
    id="tasks",
    version="1.0.0",
    displayName="Tasks",
    description="Projects and tasks for each tenant of the platform",
    icon="list-checks",
    routes=[
        FeatureRoute(path="/", component="tasks/projects.html", title="Projects", permission="tasks:read"),
        FeatureRoute(path="/projects/{projectId}", component="tasks/project.html", title="Project",
                     permission="tasks:read"),
    ],
    navigation=[FeatureNavItem(label="Projects", path="/", icon="folder-kanban", order=20, permission="tasks:read")],
    permissions=[
        FeaturePermission(key="tasks:read", label="View projects and tasks", required=True),
        FeaturePermission(key="tasks:write", label="Create and update tasks", required=True),
        FeaturePermission(key="tasks:manage", label="Delete projects and tasks"),
    ],
    requiresService=True,
    serviceEnvKey="TASKS_API_URL",
    resources=FeatureResources(d1=True),
    migrations=HERE / "migrations",
    worker=_worker,
    templates=HERE / "templates",
    manifest=FeatureManifest(id="tasks", name="Tasks", package="nno-feature-tasks", enabledByDefault=True,
                             loadPriority=50, domain="productivity", type="domain"),
)
