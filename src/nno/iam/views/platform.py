"""Platform membership for the Registry, and the session's active platform (contracts §3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from nno.iam import platforms
from nno.iam.caller import Caller, iam_ctx, require_authenticated, require_service, require_session
from nno.iam.schemas import ActivePlatformBody, PlatformMemberBody, SetPlatformRoleBody
from nno.iam.views.common import ALREADY_SO
from nno.iam.views.session import nno_session_view

router = APIRouter(tags=["platforms"])
MEMBER = "/api/nno/platform-members/{platform_id}/{user_id}"
PlatformId = Annotated[str, Path(pattern=r"^[a-z0-9]{1,32}$")]
# Ids IAM issues are NanoIDs; this also admits the longer alphanumeric ids of imported accounts.
UserId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("/api/nno/platform-members", status_code=201, responses=ALREADY_SO)
async def upsert_platform_member(body: PlatformMemberBody, request: Request,
                                 caller: Caller = Depends(require_service)) -> JSONResponse:
    view, created = await platforms.upsert(iam_ctx(request), caller, body)
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/api/nno/platform-members")
async def list_platform_members(request: Request, platformId: str | None = None, userId: str | None = None,
                                caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return {"data": await platforms.list_members(iam_ctx(request), caller, platformId, userId)}


@router.patch(MEMBER)
async def set_platform_member_role(platform_id: PlatformId, user_id: UserId, body: SetPlatformRoleBody,
                                   request: Request, caller: Caller = Depends(require_authenticated)
                                   ) -> dict[str, Any]:
    """Change a member's role (the platform's admins, operators, services; at most one's own role)."""
    return await platforms.set_role(iam_ctx(request), caller, platform_id, user_id, body.role)


@router.delete(MEMBER)
async def remove_platform_member(platform_id: PlatformId, user_id: UserId, request: Request,
                                 caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    """Remove a member: their sessions and API keys lose the platform at their next validation."""
    return await platforms.remove(iam_ctx(request), caller, platform_id, user_id)


@router.post("/api/nno/session/active-platform")
async def set_active_platform(body: ActivePlatformBody, request: Request,
                              caller: Caller = Depends(require_session)) -> dict[str, Any]:
    await platforms.set_active_platform(iam_ctx(request), caller, body.platformId)
    return await nno_session_view(request, caller)
