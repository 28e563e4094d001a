"""Platform membership for the Registry, and the session's active platform (contracts §3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from nno.iam import platforms
from nno.iam.caller import Caller, iam_ctx, require_authenticated, require_service, require_session
from nno.iam.schemas import ActivePlatformBody, PlatformMemberBody
from nno.iam.views.common import ALREADY_SO
from nno.iam.views.session import nno_session_view

router = APIRouter(tags=["platforms"])


@router.post("/api/nno/platform-members", status_code=201, responses=ALREADY_SO)
async def upsert_platform_member(body: PlatformMemberBody, request: Request,
                                 caller: Caller = Depends(require_service)) -> JSONResponse:
    view, created = await platforms.upsert(iam_ctx(request), caller, body)
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/api/nno/platform-members")
async def list_platform_members(request: Request, platformId: str | None = None, userId: str | None = None,
                                caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return {"data": await platforms.list_members(iam_ctx(request), caller, platformId, userId)}


@router.post("/api/nno/session/active-platform")
async def set_active_platform(body: ActivePlatformBody, request: Request,
                              caller: Caller = Depends(require_session)) -> dict[str, Any]:
    await platforms.set_active_platform(iam_ctx(request), caller, body.platformId)
    return await nno_session_view(request, caller)
