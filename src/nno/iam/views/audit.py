"""`GET /api/audit`: the IAM audit log, for operators and services (everything) and for an
organization's owners and admins (their organization's events, `orgId` required)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from nno.iam import audit
from nno.iam.access import is_privileged, require_org_admin
from nno.iam.caller import Caller, iam_ctx, require_authenticated
from nno.kernel.errors import NNOError
from nno.kernel.inputs import INT64_MAX, INT64_MIN

# Times are compared with BIGINT columns: anything wider is a 400, not a database error.
TimeBound = Annotated[int | None, Query(ge=INT64_MIN, le=INT64_MAX)]

router = APIRouter(tags=["audit"])


@router.get("/api/audit")
@router.get("/api/audit/events")
async def list_audit(request: Request, orgId: str | None = None, platformId: str | None = None,
                     action: str | None = None, actorId: str | None = None, targetId: str | None = None,
                     since: TimeBound = None, until: TimeBound = None, cursor: str | None = None,
                     limit: int | None = None, caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    async with iam_ctx(request).db.session() as s:
        if not await is_privileged(s, caller):
            if not orgId:
                raise NNOError(403, "FORBIDDEN", "Give the orgId of an organization you administer")
            await require_org_admin(s, caller, orgId)
        return await audit.list_events(s, org_id=orgId, platform_id=platformId, action=action, actor_id=actorId,
                                       target_id=targetId, since=since, until=until, cursor=cursor, limit=limit)
