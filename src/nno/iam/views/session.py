"""`GET /api/nno/session`: the enriched session the gateway validates bearer tokens against
(DECISIONS 3, contracts §3). Served by the global IAM and by every per-platform auth app."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import feature_permissions, rbac
from nno.iam.caller import Caller, iam_ctx, presented_token, require_service
from nno.iam.context import IAMContext
from nno.iam.models import Session, User
from nno.iam.schemas import ValidateSessionBody
from nno.iam.sessions import live_session, nno_identity
from nno.kernel.errors import NNOError

router = APIRouter(tags=["session"])


async def _view(s: AsyncSession, ctx: IAMContext, session: Session, user: User) -> dict[str, Any]:
    role, platform_id = await nno_identity(s, user, session, platform_id=ctx.platform_id)
    org_id = session.active_organization_id
    permissions: list[str] = []
    if org_id:
        # A platform's auth app adds the defaults of its features' permission catalogue.
        defaults = await feature_permissions.member_defaults(s, user.id, org_id) if ctx.platform_id else []
        permissions = await rbac.effective_permissions(s, user.id, org_id, defaults)
    return {"userId": user.id, "email": user.email, "name": user.name, "role": role, "platformId": platform_id,
            "activeOrganizationId": org_id, "expiresAt": session.expires_at, "sessionId": session.id,
            "permissions": permissions}


async def session_view_for_token(ctx: IAMContext, token: str | None) -> dict[str, Any]:
    """One transaction: the token's live session, its user, role, platform and permissions."""
    if token:
        async with ctx.db.session() as s:
            found = await live_session(s, token)
            if found is not None:
                return await _view(s, ctx, *found)
    raise NNOError(401, "UNAUTHORIZED", "A valid session token is required")


async def nno_session_view(request: Request, caller: Caller) -> dict[str, Any]:
    ctx = iam_ctx(request)
    assert caller.session is not None
    async with ctx.db.session() as s:
        session = await s.get(Session, caller.session.id)
        user = await s.get(User, caller.session.user_id)
        if session is None or user is None:
            raise NNOError(401, "UNAUTHORIZED", "The session has ended")
        return await _view(s, ctx, session, user)


@router.get("/api/nno/session")
@router.post("/api/nno/session")
async def nno_session(request: Request) -> dict[str, Any]:
    return await session_view_for_token(iam_ctx(request), presented_token(request))


@router.post("/api/validate-session")
async def validate_session(body: ValidateSessionBody, request: Request,
                           _: Caller = Depends(require_service)) -> dict[str, Any]:
    """Service-to-service validation of a token given in the body (the docs' older path); the same
    answer as `/api/nno/session`, 401 for a token that is not a live session."""
    return await session_view_for_token(iam_ctx(request), body.token)
