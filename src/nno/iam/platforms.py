"""Platform membership, kept for the Registry (contracts §3): who belongs to which platform and who
administers it. The Registry's onboarding makes the owner `platform-admin`.

A platform's managers (its platform-admins, NNO operators, services) change a member's role and
remove members (`set_role`, `remove`): never to a role above their own, never the platform's owner
(the Registry's `ownerUserId`, who administers it whatever IAM says) and never its last
platform-admin (409). A removed member's API keys stop validating at once (`apikeys.maker_role`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import audit
from nno.iam.access import PLATFORM_ROLE_RANK, is_platform_admin, is_privileged, platform_manager_rank
from nno.iam.caller import Caller
from nno.iam.context import IAMContext
from nno.iam.models import PlatformMember, Session, User
from nno.iam.schemas import PlatformMemberBody
from nno.kernel.clock import now_ms
from nno.kernel.db import transaction_lock
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN
from nno.kernel.platform_status import check_not_suspended


def member_view(m: PlatformMember, user: User | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"platformId": m.platform_id, "userId": m.user_id, "role": m.role,
                            "createdAt": m.created_at}
    if user is not None:
        view.update(email=user.email, name=user.name)
    return view


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
        q = select(PlatformMember, User).join(User, User.id == PlatformMember.user_id)
        if platform_id:
            q = q.where(PlatformMember.platform_id == platform_id)
        if user_id:
            q = q.where(PlatformMember.user_id == user_id)
        rows = (await s.execute(q.order_by(PlatformMember.created_at, PlatformMember.user_id))).all()
    return [member_view(m, u) for m, u in rows]


def _member_not_found(platform_id: str, user_id: str) -> NNOError:
    return NNOError(404, "MEMBER_NOT_FOUND", "This user is not a member of the platform",
                    {"platformId": platform_id, "userId": user_id})


async def _serialize_changes(s: AsyncSession, platform_id: str) -> None:
    """Run a platform's role changes and removals one at a time, so two admins demoting each other
    at once cannot leave it with none."""
    await transaction_lock(s, f"nno-platform-members:{platform_id}", PlatformMember.role)


async def _managed_member(s: AsyncSession, caller: Caller, platform_id: str, user_id: str, status: str | None,
                          operation: str) -> tuple[PlatformMember, int]:
    """The member to change, once the caller may manage the platform's members (with their rank).
    The caller's own role is read under the lock too: an admin demoted a moment ago acts no more."""
    await _serialize_changes(s, platform_id)
    rank = await platform_manager_rank(s, caller, platform_id)
    if rank is None:
        raise NNOError(403, "FORBIDDEN", "Only a platform-admin of this platform (or an NNO operator) may "
                                         "manage its members", {"platformId": platform_id})
    check_not_suspended(platform_id, status, privileged=await is_privileged(s, caller), operation=operation)
    row = await s.get(PlatformMember, (platform_id, user_id))
    if row is None:
        raise _member_not_found(platform_id, user_id)
    return row, rank


async def _protect_admin(s: AsyncSession, row: PlatformMember, owner_id: str | None, what: str) -> None:
    """Refuse to take the admin role from the platform's owner or its last platform-admin."""
    if owner_id is not None and row.user_id == owner_id:
        raise NNOError(409, "PLATFORM_OWNER", f"The platform's owner cannot be {what}: they administer it "
                       "whatever their membership says", {"userId": row.user_id})
    if row.role != ROLE_PLATFORM_ADMIN:
        return
    others = (await s.execute(select(func.count()).select_from(PlatformMember).where(
        PlatformMember.platform_id == row.platform_id, PlatformMember.role == ROLE_PLATFORM_ADMIN,
        PlatformMember.user_id != row.user_id))).scalar_one()
    if not others:
        raise NNOError(409, "LAST_PLATFORM_ADMIN", f"This is the platform's last platform-admin and cannot be "
                       f"{what}; make another member platform-admin first", {"userId": row.user_id})


async def set_role(ctx: IAMContext, caller: Caller, platform_id: str, user_id: str, role: str) -> dict[str, Any]:
    # Read before the transaction: either may ask the Registry.
    status = await ctx.platform_status(platform_id)
    owner_id = await ctx.platform_owner(platform_id)
    async with ctx.db.session() as s:
        row, rank = await _managed_member(s, caller, platform_id, user_id, status, "change a member's role")
        if PLATFORM_ROLE_RANK[role] > rank:
            raise NNOError(403, "ROLE_ABOVE_YOUR_OWN", "You may not give a role above your own", {"field": "role"})
        user = await s.get(User, user_id)
        previous = row.role
        if previous == role:
            return {**member_view(row, user), "previousRole": previous, "changed": False}
        if PLATFORM_ROLE_RANK[role] < PLATFORM_ROLE_RANK.get(previous, 0):
            await _protect_admin(s, row, owner_id, "demoted")
        row.role = role
        audit.record(s, caller, "platform_member.set_role", platform_id=platform_id, target_type="user",
                     target_id=user_id, data={"from": previous, "to": role,
                                              "email": user.email if user else None})
        return {**member_view(row, user), "previousRole": previous, "changed": True}


async def remove(ctx: IAMContext, caller: Caller, platform_id: str, user_id: str) -> dict[str, Any]:
    status = await ctx.platform_status(platform_id)
    owner_id = await ctx.platform_owner(platform_id)
    async with ctx.db.session() as s:
        row, _ = await _managed_member(s, caller, platform_id, user_id, status, "remove a member")
        await _protect_admin(s, row, owner_id, "removed")
        user = await s.get(User, user_id)
        view = member_view(row, user)
        await s.delete(row)
        # Their sessions stop pointing at the platform (the next validation picks another or none).
        await s.execute(update(Session).where(Session.user_id == user_id, Session.active_platform_id == platform_id)
                        .values(active_platform_id=None).execution_options(synchronize_session=False))
        audit.record(s, caller, "platform_member.remove", platform_id=platform_id, target_type="user",
                     target_id=user_id, data={"role": row.role, "email": user.email if user else None})
    return {**view, "removed": True}


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
