"""Deleting a platform deprovisions it (registry.md §7.1: `deleted` = "resources deprovisioned").

After the `delete` transition commits, the Registry asks Provisioning, as a service, for the
`DEPROVISION_PLATFORM` job (docs/contracts.md §5). The Registry is the source of truth: the delete
stands whatever Provisioning answers. The outcome is written to the audit log either way, as
`platform.deprovision_requested` (with the job id; `duplicate` when a job was already live) or
`platform.deprovision_request_failed` (with the reason), so an operator can see what to retry with
`POST /api/v1/provisioning/provision/platform/deprovision`.
"""

from __future__ import annotations

from typing import Any

import structlog

from nno.kernel.bindings import UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.service import ServiceContext
from nno.registry.access import Access
from nno.registry.store import audit

log = structlog.get_logger("nno.registry.deprovision")

DEPROVISION_PATH = "/provision/platform/deprovision"
RETRY_HINT = "POST /api/v1/provisioning/provision/platform/deprovision {platformId}"
REQUESTED = "platform.deprovision_requested"
FAILED = "platform.deprovision_request_failed"


async def _ask_provisioning(ctx: ServiceContext, platform_id: str, reason: str) -> dict[str, Any]:
    """{jobId, status, duplicate} from Provisioning, or {error} saying why there is no job."""
    provisioning = ctx.bindings.get("provisioning")
    if provisioning is None:
        return {"error": "The provisioning service is not deployed"}
    try:
        resp = await provisioning.request("POST", DEPROVISION_PATH, headers=SERVICE_IDENTITY.to_headers(),
                                          json={"platformId": platform_id, "reason": reason[:500]})
    except UpstreamError as exc:
        return {"error": f"Provisioning unreachable: {exc}"}
    try:
        body = resp.json()
    except ValueError:
        body = None
    job_id = body.get("jobId") if isinstance(body, dict) else None
    if not resp.ok or not isinstance(job_id, str):
        err = body.get("error") if isinstance(body, dict) else None
        code = err.get("code") if isinstance(err, dict) else None
        return {"error": f"Provisioning refused the job (HTTP {resp.status} {code or 'no error code'})"}
    assert isinstance(body, dict)
    return {"jobId": job_id, "status": body.get("status"), "duplicate": bool(body.get("duplicate"))}


async def request_deprovision(ctx: ServiceContext, access: Access, platform_id: str,
                              reason: str | None) -> dict[str, Any]:
    """Ask for the job and audit the outcome; never raises (the delete has already committed)."""
    why = f"platform deleted ({reason})" if reason else "platform deleted"
    outcome = await _ask_provisioning(ctx, platform_id, why)
    if "error" in outcome:
        log.warning("platform_deprovision_request_failed", platform_id=platform_id, error=outcome["error"])
        action, after, meta = FAILED, None, {"error": outcome["error"], "retry": RETRY_HINT}
    else:
        log.info("platform_deprovision_requested", platform_id=platform_id, job_id=outcome["jobId"],
                 duplicate=outcome["duplicate"])
        action, after, meta = REQUESTED, outcome, {"jobType": "DEPROVISION_PLATFORM"}
    try:
        async with ctx.db.session() as s:
            audit(s, access, platform_id=platform_id, action=action, target_type="platform",
                  target_id=platform_id, after=after, metadata=meta)
    except Exception as exc:  # the log line above is then the only record
        log.error("platform_deprovision_audit_failed", platform_id=platform_id, error=repr(exc))
    return outcome
