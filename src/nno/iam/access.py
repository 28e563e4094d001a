"""Authorization helpers shared by the IAM routers: operators, org admins, platform admins.

Who may read or manage an organization's members and invitations:
- services and NNO operators (`is_privileged`), everywhere;
- on a per-platform auth app, that platform's platform-admins (`use_platform_admin_rights`): the
  rights of an org admin in every organization of the app, member or not (owner-only acts, such as
  handing out the owner role or deleting the organization, stay with owners and operators);
- otherwise the org's own members (readers) and its owners and admins.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam.audit import ACTING_AS
from nno.iam.caller import Caller
from nno.iam.models import Member, Organization, PlatformMember, User
from nno.iam.sessions import holds_platform_admin, is_operator
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, ROLE_USER

ORG_ADMIN_ROLES = ("owner", "admin")
# The platform roles in order: nobody hands out one above their own.
PLATFORM_ROLE_RANK = {ROLE_USER: 0, ROLE_PLATFORM_ADMIN: 1}


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


async def use_platform_admin_rights(s: AsyncSession, caller: Caller) -> bool:
    """True for a signed-in platform-admin of the per-platform auth app serving this request, read from
    their user row in this transaction (a demotion takes effect at once). Marks the caller
    (`extra["actingAs"]`) so the audit rows of what it then does say which right was used.

    Never true on NNO's own IAM (`auth_app_platform_id` unset): there `users.role` means nothing and
    platform admins are `platform_members` rows, which grant no organization rights."""
    if caller.kind != "user" or not caller.user_id or caller.auth_app_platform_id is None:
        return False
    user = (await s.execute(select(User).where(User.id == caller.user_id))).scalar_one_or_none()
    if user is None or not holds_platform_admin(user):
        return False
    caller.extra[ACTING_AS] = ROLE_PLATFORM_ADMIN
    return True


async def may_see_every_org(s: AsyncSession, caller: Caller) -> bool:
    """Operators and services; on a per-platform auth app, its platform-admins too."""
    return await is_privileged(s, caller) or await use_platform_admin_rights(s, caller)


async def require_org_reader(s: AsyncSession, caller: Caller, org_id: str) -> Organization:
    """Members of the org, operators and services, and a per-platform app's platform-admins. Others get
    404, so ids are not probeable."""
    org = await get_org(s, org_id)
    if await is_privileged(s, caller) or await membership(s, caller.user_id, org_id) is not None:
        return org
    if await use_platform_admin_rights(s, caller):
        return org
    raise NNOError(404, "ORGANIZATION_NOT_FOUND", "Organization not found", {"orgId": org_id})


async def require_org_admin(s: AsyncSession, caller: Caller, org_id: str) -> Organization:
    """Owners and admins of the org, operators and services, and a per-platform app's platform-admins
    (checked after the membership, so the audit names that right only when it was the one used)."""
    org = await get_org(s, org_id)
    if await is_privileged(s, caller):
        return org
    member = await membership(s, caller.user_id, org_id)
    if member is not None and member.role in ORG_ADMIN_ROLES:
        return org
    if await use_platform_admin_rights(s, caller):
        return org
    if member is None:
        raise NNOError(404, "ORGANIZATION_NOT_FOUND", "Organization not found", {"orgId": org_id})
    raise NNOError(403, "FORBIDDEN", "Only owners and admins of the organization may do this")


async def platform_role(s: AsyncSession, user_id: str | None, platform_id: str) -> str | None:
    if not user_id:
        return None
    row = await s.get(PlatformMember, (platform_id, user_id))
    return row.role if row else None


async def is_platform_admin(s: AsyncSession, caller: Caller, platform_id: str) -> bool:
    return await platform_role(s, caller.user_id, platform_id) == ROLE_PLATFORM_ADMIN


async def platform_manager_rank(s: AsyncSession, caller: Caller, platform_id: str) -> int | None:
    """The highest platform role the caller may hand out on this platform: operators and services
    any, a platform-admin of this platform their own; None for everyone else (no member management)."""
    if await is_privileged(s, caller):
        return max(PLATFORM_ROLE_RANK.values())
    if caller.kind != "user":
        return None
    role = await platform_role(s, caller.user_id, platform_id)
    if role != ROLE_PLATFORM_ADMIN:
        return None
    return PLATFORM_ROLE_RANK[role]
