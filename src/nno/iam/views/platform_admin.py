"""Per-platform auth apps only: the platform-level role of the platform's users (`platform_roles`).

Authorized by credentials alone: an NNO service token for this platform (`auth:{platformId}`
audience) or the session of a platform-admin of this platform. `X-Nno-*` headers count for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from nno.iam import platform_roles
from nno.iam.caller import Caller, client_ip, iam_ctx, presented_token, require_session
from nno.iam.models import User
from nno.iam.schemas import AdminInviteBody, SetPlatformRoleBody
from nno.iam.sessions import holds_platform_admin
from nno.iam.views.common import ALREADY_SO
from nno.kernel.context import current_request_id
from nno.kernel.errors import NNOError

router = APIRouter(tags=["platform roles"])


@dataclass
class Authority:
    caller: Caller
    via: str  # "service-token" | "platform-admin"
    service_subject: str | None = None


async def _service_authority(request: Request) -> Authority | None:
    """An Authority for a valid service token for this platform; None when the credential is not a
    service token at all (then it may be a session)."""
    token = presented_token(request)
    if not token:
        raise NNOError(401, "UNAUTHORIZED", "A service token or a platform-admin session is required")
    if not platform_roles.looks_like_service_token(token):
        return None
    ctx = iam_ctx(request)
    claims = platform_roles.check_service_token(ctx, token)
    subject = str(claims.get("sub") or "service")[:64]
    caller = Caller(kind="service", platform_id=ctx.platform_id, ip=client_ip(request),
                    user_agent=(request.headers.get("user-agent") or "")[:512] or None,
                    request_id=current_request_id(), extra={"jti": str(claims.get("jti") or "")})
    return Authority(caller, "service-token", subject)


async def require_service_token(request: Request) -> Authority:
    found = await _service_authority(request)
    if found is None:
        raise NNOError(403, "FORBIDDEN", "Only NNO, with a service token for this platform, may do this")
    return found


async def require_role_authority(request: Request) -> Authority:
    """A service token for this platform, else a live session of a platform-admin (its role is checked
    again in the transaction that changes anything)."""
    found = await _service_authority(request)
    if found is not None:
        return found
    caller = await require_session(request)
    async with iam_ctx(request).db.session() as s:
        me = await s.get(User, caller.user_id)
    if me is None or not holds_platform_admin(me):
        raise NNOError(403, "FORBIDDEN", "Only a platform-admin of this platform may do this")
    caller.platform_id = iam_ctx(request).platform_id
    return Authority(caller, "platform-admin")


@router.put("/api/nno/users/{user_ref}/role")
async def set_user_role(user_ref: str, body: SetPlatformRoleBody, request: Request,
                        who: Authority = Depends(require_role_authority)) -> dict[str, Any]:
    """`user_ref` is a user id or an email address."""
    return await platform_roles.set_role(iam_ctx(request), who.caller, user_ref, body.role, via=who.via,
                                         service_subject=who.service_subject)


@router.get("/api/nno/platform-admins")
async def platform_admins(request: Request, _: Authority = Depends(require_role_authority)) -> dict[str, Any]:
    return {"data": await platform_roles.list_admins(iam_ctx(request))}


@router.post("/api/nno/admin-invites", status_code=201, responses=ALREADY_SO)
async def admin_invite(body: AdminInviteBody, request: Request,
                       who: Authority = Depends(require_service_token)) -> JSONResponse:
    """Seed the platform owner as platform-admin by email (provisioning): applied now if that verified
    account exists (200), else at that address's first magic-link sign-in (201)."""
    assert who.service_subject is not None
    view = await platform_roles.grant_on_sign_in(iam_ctx(request), who.caller, body.email,
                                                 body.ttlSeconds * 1000, service_subject=who.service_subject)
    return JSONResponse(view, status_code=201 if view["status"] == "pending" else 200)
