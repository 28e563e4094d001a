"""Invitations to a platform (`nno.iam.platform_invitations`): managed by the platform's admins and
NNO operators, accepted by the invitee with the mailed token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from nno.iam import platform_invitations
from nno.iam.caller import Caller, iam_ctx, require_authenticated, require_user
from nno.iam.schemas import PlatformInviteBody, PlatformInviteTokenBody

router = APIRouter(tags=["platform invitations"])
BASE = "/api/nno/platform-invitations"
PlatformIdQuery = Annotated[str | None, Query(pattern=r"^[a-z0-9]{1,32}$")]
InvitationId = Annotated[str, Path(pattern=r"^[a-z0-9]{1,32}$")]


@router.post(BASE, status_code=201)
async def create(body: PlatformInviteBody, request: Request,
                 caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await platform_invitations.create(iam_ctx(request), caller, body)


@router.get(BASE)
async def list_pending(request: Request, platformId: PlatformIdQuery = None,
                       caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    """`platformId`: that platform's pending invitations; without it, the caller's own."""
    return {"data": await platform_invitations.list_pending(iam_ctx(request), caller, platformId)}


@router.post(f"{BASE}/lookup")
async def lookup(body: PlatformInviteTokenBody, request: Request,
                 caller: Caller = Depends(require_user)) -> dict[str, Any]:
    return await platform_invitations.lookup(iam_ctx(request), caller, body.token)


@router.post(f"{BASE}/accept")
async def accept(body: PlatformInviteTokenBody, request: Request,
                 caller: Caller = Depends(require_user)) -> dict[str, Any]:
    return await platform_invitations.accept(iam_ctx(request), caller, body.token)


@router.delete(f"{BASE}/{{invitation_id}}")
async def cancel(invitation_id: InvitationId, request: Request,
                 caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await platform_invitations.cancel(iam_ctx(request), caller, invitation_id)
