"""`GET /api/nno/session`: the enriched session the gateway validates bearer tokens against
(DECISIONS 3, contracts §3). Served by the global IAM and by every per-platform auth app."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, StringConstraints

from nno.iam import rbac
from nno.iam.caller import Caller, iam_ctx, require_service, require_session
from nno.iam.models import User
from nno.iam.sessions import find_session, nno_identity
from nno.kernel.errors import NNOError

router = APIRouter(tags=["session"])


async def nno_session_view(request: Request, caller: Caller) -> dict[str, Any]:
    ctx = iam_ctx(request)
    session = caller.session
    assert session is not None
    async with ctx.db.session() as s:
        user = await s.get(User, session.user_id)
        if user is None:
            raise NNOError(401, "UNAUTHORIZED", "The account no longer exists")
        role, platform_id = await nno_identity(s, user, session, platform_id=ctx.platform_id)
        org_id = session.active_organization_id
        permissions = await rbac.effective_permissions(s, user.id, org_id) if org_id else []
    return {"userId": user.id, "email": user.email, "name": user.name, "role": role, "platformId": platform_id,
            "activeOrganizationId": org_id, "expiresAt": session.expires_at, "sessionId": session.id,
            "permissions": permissions}


@router.get("/api/nno/session")
@router.post("/api/nno/session")
async def nno_session(request: Request, caller: Caller = Depends(require_session)) -> dict[str, Any]:
    return await nno_session_view(request, caller)


class ValidateSessionBody(BaseModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


@router.post("/api/validate-session")
async def validate_session(body: ValidateSessionBody, request: Request,
                           _: Caller = Depends(require_service)) -> dict[str, Any]:
    """Service-to-service validation of a token given in the body (the docs' older path); the same
    answer as `/api/nno/session`, 401 for a token that is not a live session."""
    found = await find_session(iam_ctx(request).db, body.token)
    if found is None:
        raise NNOError(401, "UNAUTHORIZED", "The session token is not valid")
    return await nno_session_view(request, Caller(kind="user", user_id=found.user_id, session=found,
                                                  token=body.token))
