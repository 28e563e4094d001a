"""Authorization helpers shared by the IAM routers: operators, org admins, platform admins."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam.caller import Caller
from nno.iam.models import Member, Organization, PlatformMember
from nno.iam.sessions import is_operator
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN

ORG_ADMIN_ROLES = ("owner", "admin")


async def is_privileged(s: AsyncSession, caller: Caller) -> bool:
    """Services (static key, dev bypass) and members of an nno-operator organization."""
    if caller.is_service:
        return True
    return caller.kind == "user" and caller.user_id is not None and await is_operator(s, caller.user_id)


async def require_privileged(s: AsyncSession, caller: Caller) -> None:
    if not await is_privileged(s, caller):
        raise NNOError(403, "FORBIDDEN", "Operator or service access required")


async def get_org(s: AsyncSession, org_id: str) -> Organization:
    org = await s.get(Organization, org_id)
    if org is None:
        raise NNOError(404, "ORGANIZATION_NOT_FOUND", "Organization not found", {"orgId": org_id})
    return org


async def membership(s: AsyncSession, user_id: str | None, org_id: str) -> Member | None:
    if not user_id:
        return None
    q = select(Member).where(Member.organization_id == org_id, Member.user_id == user_id)
    return (await s.execute(q)).scalar_one_or_none()


async def require_org_reader(s: AsyncSession, caller: Caller, org_id: str) -> Organization:
    """Members of the org, operators and services. Others get 404, so ids are not probeable."""
    org = await get_org(s, org_id)
    if await is_privileged(s, caller) or await membership(s, caller.user_id, org_id) is not None:
        return org
    raise NNOError(404, "ORGANIZATION_NOT_FOUND", "Organization not found", {"orgId": org_id})


async def require_org_admin(s: AsyncSession, caller: Caller, org_id: str) -> Organization:
    """Owners and admins of the org, operators and services."""
    org = await get_org(s, org_id)
    if await is_privileged(s, caller):
        return org
    member = await membership(s, caller.user_id, org_id)
    if member is None:
        raise NNOError(404, "ORGANIZATION_NOT_FOUND", "Organization not found", {"orgId": org_id})
    if member.role not in ORG_ADMIN_ROLES:
        raise NNOError(403, "FORBIDDEN", "Only owners and admins of the organization may do this")
    return org


async def platform_role(s: AsyncSession, user_id: str | None, platform_id: str) -> str | None:
    if not user_id:
        return None
    row = await s.get(PlatformMember, (platform_id, user_id))
    return row.role if row else None


async def is_platform_admin(s: AsyncSession, caller: Caller, platform_id: str) -> bool:
    return await platform_role(s, caller.user_id, platform_id) == ROLE_PLATFORM_ADMIN
