"""Asking the CLI Service to build a platform's console again, for a change the shell shows that no
feature or stack job carries (the platform's icon). The build reads the icon from the Registry, so it
is asked for after the change has committed."""

from __future__ import annotations

from typing import Literal

import structlog

from nno.kernel.bindings import UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.service import ServiceContext

log = structlog.get_logger("nno.registry.shell_builds")

Outcome = Literal["queued", "no-repository", "no-cli-service", "failed"]


async def rebuild_shell(ctx: ServiceContext, platform_id: str, why: str) -> Outcome:
    """Queue a build of the platform repository's head. A failure changes nothing already stored: it
    is logged with what to run, and the next build of the platform shows the change anyway."""
    cli = ctx.bindings.get("cli")
    if cli is None:
        return "no-cli-service"
    try:
        resp = await cli.request("POST", f"/platforms/{platform_id}/builds", json={},
                                 headers=SERVICE_IDENTITY.to_headers())
    except UpstreamError as exc:
        log.warning("shell_rebuild_failed", platformId=platform_id, why=why, error=str(exc),
                    hint=f"nno platform builds rebuild --platform {platform_id}")
        return "failed"
    if resp.status == 404:  # no repository (yet): the build that makes it reads the icon then
        return "no-repository"
    if not resp.ok:
        log.warning("shell_rebuild_failed", platformId=platform_id, why=why, status=resp.status,
                    error=resp.body[:200].decode("utf-8", "replace"),
                    hint=f"nno platform builds rebuild --platform {platform_id}")
        return "failed"
    log.info("shell_rebuild_queued", platformId=platform_id, why=why)
    return "queued"
