"""The console shell's inputs: the platform's configuration and its active features, turned into
the Pages site the local cloud builds with `nno.console.build.build_console_site`. Published when
the platform is provisioned and again by every `trigger_shell_rebuild`, so activating or
deactivating a feature changes the shell."""

from __future__ import annotations

from typing import Any

import structlog

from nno.console.build import ShellConfig, ShellFeature
from nno.provisioning import naming
from nno.provisioning.steps.base import StepContext
from nno.sdk.discovery import get_feature

log = structlog.get_logger("nno.provisioning.steps.console")


def _url(sctx: StepContext, service: str, kind: str, stack: str) -> str:
    return "http://" + naming.hostname(service, kind, stack, sctx.platform_id, sctx.base_domain, sctx.environment)


async def active_shell_features(sctx: StepContext) -> list[ShellFeature]:
    """The platform's active features (this environment) whose packages are installed here."""
    out: dict[str, ShellFeature] = {}
    for row in await sctx.registry.list_features(sctx.platform_id):
        fid = row.get("featureId")
        if row.get("status") != "active" or not isinstance(fid, str) or fid in out:
            continue
        if row.get("environment") not in (None, sctx.environment):
            continue
        installed = get_feature(fid)
        definition = installed.definition if installed is not None else None
        if definition is None:
            log.warning("shell_feature_not_installed", platformId=sctx.platform_id, featureId=fid)
            continue
        stack = str(row.get("stackId") or naming.DEFAULT_STACK_ID)
        out[fid] = ShellFeature.from_definition(definition, url=_url(sctx, fid, "svc", stack), stack_id=stack)
    return list(out.values())


def console_site(sctx: StepContext, name: str, features: list[ShellFeature], icon: str | None = None
                 ) -> dict[str, Any]:
    pid, env = sctx.platform_id, sctx.environment
    config = ShellConfig(platformId=pid, name=name, environment=env, icon=icon,
                         authWorker=naming.auth_worker_name(pid, env),
                         authUrl=_url(sctx, "auth", "svc", naming.DEFAULT_STACK_ID),
                         consoleUrl=_url(sctx, "console", "app", naming.DEFAULT_STACK_ID), features=features)
    return {"platformId": pid, "environment": env, "name": name, "authUrl": config.authUrl,
            "console": config.model_dump(mode="json")}


async def publish_console(sctx: StepContext) -> dict[str, Any]:
    """Rebuild the platform's console site from the Registry's view of its features, name and icon
    (the Registry validated the icon with the shell's own rule when it was set)."""
    platform = await sctx.registry.get_platform(sctx.platform_id)
    features = await active_shell_features(sctx)
    icon = platform.get("icon")
    site = console_site(sctx, str(platform.get("name") or sctx.platform_id), features,
                        icon if isinstance(icon, str) else None)
    await sctx.provider.ensure_pages(naming.portal_pages_name(sctx.platform_id, sctx.environment),
                                     platform_id=sctx.platform_id, site=site)
    return {"features": [f.id for f in features]}
