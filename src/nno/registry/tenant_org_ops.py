"""The operator view of a platform's tenant-organization outbox (`tenant_orgs`): the rows still to
deliver (pending, in back-off) and those that failed for good, and a retry of a failed row.

Only the platform's admins (its owner and platform-admins, as people), NNO operators and services
see or retry them: a key or a plain member may see the platform but not its delivery plumbing
(403); a caller who cannot see the platform gets its 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.registry.access import Access
from nno.registry.gone import Write
from nno.registry.models import Entity, Platform
from nno.registry.store import RegistryBase, audit, lock_platform, page
from nno.registry.tenant_orgs import FAILED, PENDING, TenantOrgDispatcher, TenantOrgOutbox


def outbox_row(row: TenantOrgOutbox, tenant: Entity | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "platformId": row.platform_id,
        "tenantId": row.tenant_id,
        "tenantName": tenant.name if tenant is not None else None,
        "tenantDeleted": tenant is None or tenant.deleted_at is not None,
        "status": row.status,
        "attempts": row.attempts,
        "lastError": row.last_error,
        "nextAttemptAt": row.next_attempt_at if row.status == PENDING else None,
        "createdAt": row.created_at,
    }


class TenantOrgOutboxService(RegistryBase):
    async def _check_admin(self, access: Access, platform_id: str, what: str) -> Platform:
        platform = await self.check_visible(access, platform_id)
        if not access.privileged and not await access.is_platform_admin(platform.id, platform.owner_user_id):
            raise NNOError(403, "FORBIDDEN", f"Only the platform's admins and NNO operators may {what}")
        return platform

    async def list_rows(self, access: Access, platform_id: str, *, status: str | None, limit: int | None,
                        cursor: str | None) -> dict[str, Any]:
        await self._check_admin(access, platform_id, "see its organizations' deliveries")
        where = [TenantOrgOutbox.platform_id == platform_id]
        if status is not None:
            where.append(TenantOrgOutbox.status == status)
        async with self.db.session() as s:
            # The page's rows as loaded; serialized below with their tenants (one query for the page).
            out = await page(s, TenantOrgOutbox, where, limit=limit, cursor=cursor, serialize=lambda row: row)
            rows: list[TenantOrgOutbox] = out["data"]
            tenant_ids = {r.tenant_id for r in rows}
            tenants = {e.id: e for e in (await s.execute(
                select(Entity).where(Entity.id.in_(tenant_ids)))).scalars().all()} if tenant_ids else {}
        out["data"] = [outbox_row(r, tenants.get(r.tenant_id)) for r in rows]
        return out

    async def retry(self, access: Access, platform_id: str, row_id: str) -> dict[str, Any]:
        """A failed row back to pending, due now, its attempts reset; the dispatcher is woken."""
        await self._check_admin(access, platform_id, "retry its organizations' deliveries")
        now = now_ms()
        async with self.db.session() as s:
            await lock_platform(s, platform_id, Write.configure("retry an organization's delivery"), access)
            row = await s.get(TenantOrgOutbox, row_id)
            if row is None or row.platform_id != platform_id:
                raise NNOError(404, "NOT_FOUND", "Outbox row not found", {"field": "rowId"})
            tenant = await s.get(Entity, row.tenant_id)
            before = outbox_row(row, tenant)
            if row.status != FAILED:
                raise NNOError(409, "TENANT_ORG_NOT_RETRYABLE", "Only a delivery that failed for good can be "
                               "retried; this one is still being tried", {"status": row.status})
            # The dispatcher claims pending rows only, so it never holds this one.
            row.status, row.attempts, row.next_attempt_at = PENDING, 0, now
            after = outbox_row(row, tenant)
            audit(s, access, platform_id=platform_id, entity_id=row.tenant_id, action="tenant_org.retry",
                  target_type="tenant_org_outbox", target_id=row.id, before=before, after=after, at=now)
        TenantOrgDispatcher.of(self.ctx).kick()
        return after
