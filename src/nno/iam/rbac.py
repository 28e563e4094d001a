"""The feature-permission layer: role -> permissions per organization, per-user grants and denials,
and the resolution rule.

Resolution for (user, org, permission): an unexpired explicit denial wins over everything; else an
unexpired grant allows; else the permissions of the user's role in the org allow (a role may hold
`*` or `{featureId}:*`). Expired grants are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam.models import Member, PermissionGrant, RolePermission
from nno.kernel.clock import now_ms


def _matches(held: str, wanted: str) -> bool:
    if held == wanted or held == "*":
        return True
    return held.endswith(":*") and wanted.startswith(held[:-1])


async def member_role(s: AsyncSession, user_id: str, org_id: str) -> str | None:
    q = select(Member.role).where(Member.user_id == user_id, Member.organization_id == org_id)
    return (await s.execute(q)).scalar_one_or_none()


async def role_permissions(s: AsyncSession, org_id: str, role: str) -> list[str]:
    q = select(RolePermission.permissions).where(RolePermission.org_id == org_id, RolePermission.role == role)
    perms = (await s.execute(q)).scalar_one_or_none()
    return list(perms or [])


async def active_grants(s: AsyncSession, user_id: str, org_id: str) -> list[PermissionGrant]:
    now = now_ms()
    q = select(PermissionGrant).where(
        PermissionGrant.user_id == user_id, PermissionGrant.org_id == org_id,
        or_(PermissionGrant.expires_at.is_(None), PermissionGrant.expires_at > now))
    return list((await s.execute(q)).scalars().all())


async def check(s: AsyncSession, user_id: str, org_id: str, permission: str) -> tuple[bool, str]:
    grants = await active_grants(s, user_id, org_id)
    if any(not g.granted and _matches(g.permission, permission) for g in grants):
        return False, "denied"
    if any(g.granted and _matches(g.permission, permission) for g in grants):
        return True, "grant"
    role = await member_role(s, user_id, org_id)
    if role is not None and any(_matches(p, permission) for p in await role_permissions(s, org_id, role)):
        return True, "role"
    return False, "not_granted" if role is not None else "not_a_member"


async def effective_permissions(s: AsyncSession, user_id: str, org_id: str,
                                extra: Iterable[str] = ()) -> list[str]:
    """Role permissions plus grants plus `extra` (defaults), minus exact denials (wildcard denials
    remove matching keys)."""
    grants = await active_grants(s, user_id, org_id)
    role = await member_role(s, user_id, org_id)
    held = set(await role_permissions(s, org_id, role)) if role else set()
    held.update(extra)
    held.update(g.permission for g in grants if g.granted)
    denials = [g.permission for g in grants if not g.granted]
    return sorted(p for p in held if not any(_matches(d, p) for d in denials))


def role_view(r: RolePermission) -> dict[str, Any]:
    return {"id": r.id, "orgId": r.org_id, "role": r.role, "permissions": list(r.permissions or []),
            "createdAt": r.created_at, "updatedAt": r.updated_at}


def grant_view(g: PermissionGrant) -> dict[str, Any]:
    return {"id": g.id, "userId": g.user_id, "orgId": g.org_id, "permission": g.permission,
            "granted": g.granted, "grantedBy": g.granted_by, "expiresAt": g.expires_at,
            "createdAt": g.created_at}
