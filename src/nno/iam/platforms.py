"""Platform membership, kept for the Registry (contracts §3): who belongs to which platform and who
administers it. The Registry's onboarding makes the owner `platform-admin`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from nno.iam import audit
from nno.iam.access import is_platform_admin, is_privileged
from nno.iam.caller import Caller
from nno.iam.context import IAMContext
from nno.iam.models import PlatformMember, Session, User
from nno.iam.schemas import PlatformMemberBody
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError


def member_view(m: PlatformMember) -> dict[str, Any]:
    return {"platformId": m.platform_id, "userId": m.user_id, "role": m.role, "createdAt": m.created_at}


async def upsert(ctx: IAMContext, caller: Caller, body: PlatformMemberBody) -> tuple[dict[str, Any], bool]:
    async with ctx.db.session() as s:
        if await s.get(User, body.userId) is None:
            raise NNOError(404, "USER_NOT_FOUND", "User not found", {"userId": body.userId})
        row = await s.get(PlatformMember, (body.platformId, body.userId))
        created = row is None
        if row is None:
            row = PlatformMember(platform_id=body.platformId, user_id=body.userId, role=body.role,
                                 created_at=now_ms())
            s.add(row)
        elif row.role == body.role:
            return member_view(row), False
        else:
            row.role = body.role
        audit.record(s, caller, "platform_member.upsert", platform_id=body.platformId, target_type="user",
                     target_id=body.userId, data={"role": body.role, "created": created})
    return member_view(row), created


async def list_members(ctx: IAMContext, caller: Caller, platform_id: str | None,
                       user_id: str | None) -> list[dict[str, Any]]:
    if not platform_id and not user_id:
        raise NNOError(400, "VALIDATION_ERROR", "Give platformId or userId", {"field": "platformId"})
    async with ctx.db.session() as s:
        if not await is_privileged(s, caller):
            if caller.kind != "user":
                raise NNOError(403, "FORBIDDEN", "Not allowed to list platform members")
            own_query = user_id == caller.user_id
            admin = platform_id is not None and await is_platform_admin(s, caller, platform_id)
            if not own_query and not admin:
                raise NNOError(403, "FORBIDDEN", "Only platform admins may list a platform's members")
        q = select(PlatformMember)
        if platform_id:
            q = q.where(PlatformMember.platform_id == platform_id)
        if user_id:
            q = q.where(PlatformMember.user_id == user_id)
        rows = (await s.execute(q.order_by(PlatformMember.created_at, PlatformMember.user_id))).scalars().all()
    return [member_view(m) for m in rows]


async def set_active_platform(ctx: IAMContext, caller: Caller, platform_id: str) -> None:
    assert caller.session is not None and caller.user_id
    async with ctx.db.session() as s:
        if await s.get(PlatformMember, (platform_id, caller.user_id)) is None:
            raise NNOError(403, "NOT_A_PLATFORM_MEMBER", "You are not a member of this platform",
                           {"platformId": platform_id})
        row = await s.get(Session, caller.session.id)
        if row is None:
            raise NNOError(401, "UNAUTHORIZED", "The session has ended")
        row.active_platform_id = platform_id
        caller.session.active_platform_id = platform_id
        audit.record(s, caller, "session.set_active_platform", platform_id=platform_id, target_type="session",
                     target_id=row.id)
