"""Per-platform auth apps: the catalogue of permission keys the platform's active features declare.

Provisioning registers a feature's keys when it activates the feature (and removes them when it is
deactivated), with a service token for this platform. The catalogue gives every organization member
defaults: the keys a feature marks `required` (needed to use it at all) for every member, and all of
the feature's keys for the organization's owners and admins. Explicit denials still win (`rbac`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import audit
from nno.iam.caller import Caller
from nno.iam.context import IAMContext
from nno.iam.models import FeaturePermissionRow, Member
from nno.iam.schemas import FeaturePermissionItem
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError

ORG_MANAGERS = frozenset({"owner", "admin"})


def view(row: FeaturePermissionRow) -> dict[str, Any]:
    return {"key": row.key, "featureId": row.feature_id, "label": row.label, "required": row.required,
            "createdAt": row.created_at, "updatedAt": row.updated_at}


async def register(ctx: IAMContext, caller: Caller, feature_id: str,
                   items: list[FeaturePermissionItem]) -> dict[str, Any]:
    prefix = f"{feature_id}:"
    wrong = [i.key for i in items if not i.key.startswith(prefix)]
    if wrong:
        raise NNOError(400, "VALIDATION_ERROR", f"Permission keys of feature {feature_id} start with {prefix}",
                       {"field": "permissions", "keys": wrong})
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        raise NNOError(400, "VALIDATION_ERROR", "A permission key is listed twice", {"field": "permissions"})
    now = now_ms()
    async with ctx.db.session() as s:
        taken = (await s.execute(select(FeaturePermissionRow).where(
            FeaturePermissionRow.key.in_(keys), FeaturePermissionRow.feature_id != feature_id))).scalars().all()
        if taken:
            raise NNOError(409, "PERMISSION_TAKEN", "Another feature registered these keys",
                           {"keys": sorted(r.key for r in taken)})
        existing = {r.key: r for r in (await s.execute(select(FeaturePermissionRow).where(
            FeaturePermissionRow.feature_id == feature_id))).scalars().all()}
        for key, old in existing.items():
            if key not in keys:
                await s.delete(old)
        for item in items:
            row = existing.get(item.key)
            if row is None:
                s.add(FeaturePermissionRow(key=item.key, feature_id=feature_id, label=item.label,
                                           required=item.required, created_at=now, updated_at=now))
            elif (row.label, row.required) != (item.label, item.required):
                row.label, row.required, row.updated_at = item.label, item.required, now
        audit.record(s, caller, "feature.permissions_registered", target_type="feature", target_id=feature_id,
                     platform_id=ctx.platform_id, data={"keys": keys})
    return {"featureId": feature_id, "permissions": [i.model_dump() for i in items]}


async def unregister(ctx: IAMContext, caller: Caller, feature_id: str) -> dict[str, Any]:
    async with ctx.db.session() as s:
        result = await s.execute(delete(FeaturePermissionRow).where(FeaturePermissionRow.feature_id == feature_id))
        removed = int(getattr(result, "rowcount", 0) or 0)
        audit.record(s, caller, "feature.permissions_removed", target_type="feature", target_id=feature_id,
                     platform_id=ctx.platform_id, data={"removed": removed})
    return {"featureId": feature_id, "removed": removed}


async def catalogue(ctx: IAMContext, feature_id: str | None = None) -> list[dict[str, Any]]:
    async with ctx.db.session() as s:
        q = select(FeaturePermissionRow).order_by(FeaturePermissionRow.key)
        if feature_id:
            q = q.where(FeaturePermissionRow.feature_id == feature_id)
        return [view(r) for r in (await s.execute(q)).scalars().all()]


async def member_defaults(s: AsyncSession, user_id: str, org_id: str) -> list[str]:
    """The catalogue keys a member of `org_id` holds by default (none for a non-member)."""
    role = (await s.execute(select(Member.role).where(Member.user_id == user_id,
                                                      Member.organization_id == org_id))).scalar_one_or_none()
    if role is None:
        return []
    q = select(FeaturePermissionRow.key)
    if role not in ORG_MANAGERS:
        q = q.where(FeaturePermissionRow.required.is_(True))
    return list((await s.execute(q)).scalars().all())
