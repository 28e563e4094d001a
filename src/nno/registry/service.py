"""Platforms, the lifecycle, tenants and stacks: the Registry's core logic (no HTTP here).

Every write is one transaction that also writes its audit row; checks that count rows first take
the platform row lock (`lock_platform`), so limits hold under concurrency on both backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nno.kernel import tiers
from nno.kernel.clock import now_ms
from nno.kernel.context import request_id_var
from nno.kernel.errors import NNOError
from nno.kernel.icons import icon_summary
from nno.kernel.identity import ROLE_PLATFORM_ADMIN
from nno.kernel.ids import new_id
from nno.kernel.platform_status import GONE_STATUSES
from nno.registry import lifecycle, serialize, shell_builds, steps, tenant_orgs
from nno.registry.access import Access
from nno.registry.deprovision import request_deprovision
from nno.registry.gone import Write
from nno.registry.models import (
    Entity,
    FeatureActivation,
    LifecycleEvent,
    OnboardingSession,
    Platform,
    Resource,
    Stack,
)
from nno.registry.naming import DEFAULT_STACK_ID
from nno.registry.schemas import (
    PlatformCreate,
    PlatformUpdate,
    StackCreate,
    StackUpdate,
    TenantCreate,
    TenantUpdate,
)
from nno.registry.store import (
    FEATURE_LIMITS,
    LIVE_FEATURE,
    TENANT_LIMITS,
    RegistryBase,
    audit,
    lock_owner,
    lock_platform,
    new_platform_id,
    page,
    platform_total,
    shift_status_count,
)

DEFAULT_TENANT_SLUG = "default"
# Stack statuses a gone platform may still record: DEACTIVATE_STACK's end, or a job that failed.
STACK_WIND_DOWN = frozenset({"deactivated", "failed"})
# Fields of a platform only operators and services may change (billing, CLI Service, ownership).
PRIVILEGED_FIELDS = frozenset({"tier", "cfAccountId", "repoName", "stripeCustomerId", "ownerUserId", "trialEndsAt"})
_PLATFORM_COLUMNS = {
    "name": "name",
    "tier": "tier",
    "cfAccountId": "cf_account_id",
    "repoName": "repo_name",
    "stripeCustomerId": "stripe_customer_id",
    "ownerUserId": "owner_user_id",
    "icon": "icon",
    "trialEndsAt": "trial_ends_at",
}


def slug_taken(exc: IntegrityError, what: str) -> NNOError | None:
    if "slug" in str(exc.orig).lower():
        return NNOError(409, "SLUG_TAKEN", f"That {what} slug is already taken", {"field": "slug"})
    return None


class NewPlatformTransaction:
    """The transaction that inserts a platform (see `new_platform_transaction`)."""

    def __init__(self, base: RegistryBase, session: AsyncSession) -> None:
        self.base = base
        self.session = session
        self.published: str | None = None

    async def publish(self, platform: Platform) -> None:
        """Write the new platform's status to the gateway's cache before the commit: nobody can
        transition the platform until it is visible."""
        await self.session.flush()
        await self.base.publish_status(platform.id, platform.status)
        self.published = platform.id


@asynccontextmanager
async def new_platform_transaction(base: RegistryBase) -> AsyncIterator[NewPlatformTransaction]:
    """One transaction that creates a platform (direct create and onboarding). If it fails after
    `publish`, the cached status is forgotten again; a taken slug is 409 `SLUG_TAKEN`."""
    tx: NewPlatformTransaction | None = None
    try:
        async with base.db.session() as s:
            tx = NewPlatformTransaction(base, s)
            yield tx
    except Exception as exc:
        if tx is not None and tx.published is not None:
            await base.forget_status(tx.published)
        if isinstance(exc, IntegrityError):
            raise (slug_taken(exc, "platform") or exc) from None
        raise


async def insert_platform(
    s: AsyncSession,
    access: Access,
    *,
    name: str,
    slug: str,
    tier: str,
    owner_user_id: str | None,
    now: int,
    extra: dict[str, Any] | None = None,
) -> tuple[Platform, Entity, Stack]:
    """A new `pending` platform with its default tenant and reserved `default` stack, audited."""
    platform = Platform(
        id=new_platform_id(), name=name, slug=slug, status="pending", tier=tier, owner_user_id=owner_user_id,
        created_at=now, updated_at=now, **(extra or {}),
    )
    platform.platform_class = platform.platform_class or "platform"
    tenant = Entity(id=new_id(), platform_id=platform.id, parent_id=None, type="tenant", name=name,
                    slug=DEFAULT_TENANT_SLUG, status="active", created_at=now, updated_at=now)
    stack = Stack(platform_id=platform.id, id=DEFAULT_STACK_ID, tenant_id=tenant.id, name=DEFAULT_STACK_ID,
                  is_default=True, status="pending", created_at=now, updated_at=now)
    # Flushed one by one: without relationship() the unit of work does not order by foreign key.
    for row in (platform, tenant, stack):
        s.add(row)
        await s.flush()
    await shift_status_count(s, None, platform.status)
    audit(s, access, platform_id=platform.id, action="platform.create", target_type="platform",
          target_id=platform.id, after=serialize.platform(platform), at=now)
    audit(s, access, platform_id=platform.id, action="entity.create", target_type="entity", target_id=tenant.id,
          entity_id=tenant.id, after=serialize.entity(tenant), at=now)
    audit(s, access, platform_id=platform.id, action="stack.create", target_type="stack",
          target_id=DEFAULT_STACK_ID, after=serialize.stack(stack), at=now)
    return platform, tenant, stack


async def owned_platforms(s: AsyncSession, owner_user_id: str) -> int:
    """How many live platforms a user owns (cancelled and deleted ones do not count)."""
    return int(await s.scalar(select(func.count()).select_from(Platform).where(
        Platform.owner_user_id == owner_user_id, Platform.status.not_in(sorted(GONE_STATUSES)))) or 0)


async def check_platform_quota(s: AsyncSession, owner_user_id: str, tier: str) -> None:
    """A user owns at most the new platform's tier's number of live platforms (its own included,
    already flushed): self-serve sign-up is where the per-tier platform limit bites. Serialised per
    owner, so concurrent sign-ups cannot both pass."""
    await lock_owner(s, owner_user_id)
    owned = await owned_platforms(s, owner_user_id)
    cap = tiers.limit(tier, "platforms")
    if cap is not None and owned > cap:
        raise tiers.limit_error(tier, "platforms", owned - 1,
                                message=f"Tier {tier} allows {cap} platform{'s' if cap != 1 else ''} per owner")


class PlatformService(RegistryBase):
    # --- platforms -----------------------------------------------------------------------------

    async def list_platforms(self, access: Access, *, limit: int | None, cursor: str | None,
                             status: str | None = None) -> dict[str, Any]:
        access.require_authenticated()
        where: list[ColumnElement[bool]] = []
        ident = access.identity
        if not access.privileged:
            if ident.auth_type == "apikey":
                where.append(Platform.id == (ident.platform_id or ""))
                if ident.role != ROLE_PLATFORM_ADMIN:  # a key sees its platform only while its maker may
                    where.append(Platform.owner_user_id == (ident.user_id or ""))
            elif ident.auth_type == "session" and ident.user_id:
                admin_of = await access.admin_platform_ids()
                visible = [Platform.owner_user_id == ident.user_id]
                if admin_of:
                    visible.append(Platform.id.in_(sorted(admin_of)))
                where.append(or_(*visible))
            else:
                where.append(Platform.id.is_(None))  # nothing
        if status is not None:
            if status not in lifecycle.STATUSES:
                raise NNOError(400, "VALIDATION_ERROR", "Unknown platform status",
                               {"field": "status", "allowed": list(lifecycle.STATUSES)})
            where.append(Platform.status == status)
        # Operators and services list everything: the counters give the exact total without a full count.
        total = platform_total(status) if access.privileged else None
        async with self.db.session() as s:
            return await page(s, Platform, where, limit=limit, cursor=cursor, serialize=serialize.platform,
                              total_stmt=total)

    async def create_platform(self, access: Access, body: PlatformCreate) -> dict[str, Any]:
        access.require_authenticated()
        if not access.privileged:
            raise NNOError(403, "FORBIDDEN", "Only NNO operators and services create platforms directly; "
                           "sign-up goes through POST /api/v1/onboarding")
        now = now_ms()
        extra = {"cf_account_id": body.cfAccountId, "repo_name": body.repoName,
                 "stripe_customer_id": body.stripeCustomerId, "trial_ends_at": body.trialEndsAt,
                 "platform_class": body.platformClass}
        async with new_platform_transaction(self) as tx:
            platform, _, _ = await insert_platform(tx.session, access, name=body.name, slug=body.slug, tier=body.tier,
                                                   owner_user_id=body.ownerUserId, now=now, extra=extra)
            await tx.publish(platform)
        return serialize.platform(platform)

    async def get_platform(self, access: Access, platform_id: str) -> dict[str, Any]:
        return serialize.platform(await self.check_visible(access, platform_id))

    async def get_by_slug(self, access: Access, slug: str) -> dict[str, Any]:
        access.require_authenticated()
        async with self.db.session() as s:
            row = (await s.execute(select(Platform).where(Platform.slug == slug))).scalar_one_or_none()
            if row is None or not await access.can_see(row.id, row.owner_user_id):
                raise NNOError(404, "NOT_FOUND", "Platform not found")
            return serialize.platform(row)

    async def get_status(self, access: Access, platform_id: str) -> dict[str, Any]:
        """The gateway's fallback when the status cache misses. Refills the cache only when the key
        is absent (a lost Redis, a platform made before the cache existed), so a read never replaces
        what a transition published, except in the instant between this check and the refill."""
        missing = await self.kv_missing(platform_id)
        platform = await self.check_visible(access, platform_id)
        if missing:
            await self.publish_status(platform.id, platform.status)
        return {"platformId": platform.id, "status": platform.status}

    async def update_platform(self, access: Access, platform_id: str, body: PlatformUpdate) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        changes = body.model_dump(exclude_unset=True)
        nulled = [k for k in ("name", "tier") if k in changes and changes[k] is None]
        if nulled:
            raise NNOError(400, "VALIDATION_ERROR", "name and tier cannot be null", {"fields": nulled})
        forbidden = sorted(set(changes) & PRIVILEGED_FIELDS)
        if forbidden and not access.privileged:
            raise NNOError(403, "FORBIDDEN", "Only NNO operators and services may change these fields",
                           {"fields": forbidden})
        async with self.db.session() as s:
            p = await lock_platform(s, platform_id, Write.configure("change the platform's settings"), access)
            before = serialize.platform(p)
            new_tier = changes.get("tier")
            if new_tier and new_tier != p.tier:
                await self._check_tier_fits(s, p, new_tier)
            for field, value in changes.items():
                setattr(p, _PLATFORM_COLUMNS[field], value)
            after = serialize.platform(p)
            if after != before:
                p.updated_at = now_ms()
                after = serialize.platform(p)
                diff = {k for k in after if after[k] != before[k]} - {"updatedAt"}
                was, now = {k: before[k] for k in diff}, {k: after[k] for k in diff}
                if "icon" in diff:  # an upload is up to 64 KB: the audit keeps its digest
                    was["icon"], now["icon"] = icon_summary(was["icon"]), icon_summary(now["icon"])
                audit(s, access, platform_id=platform_id, action="platform.update", target_type="platform",
                      target_id=platform_id, before=was, after=now)
        if after["icon"] != before["icon"]:  # the shell shows it: build it again, now that it is stored
            await shell_builds.rebuild_shell(self.ctx, platform_id, "icon")
        return after

    # --- lifecycle ----------------------------------------------------------------------------

    async def transition(self, access: Access, platform_id: str, action: str,
                         reason: str | None = None) -> dict[str, Any]:
        """The one way a platform changes status (DECISIONS 10), for every caller."""
        if action not in lifecycle.ACTIONS:
            raise NNOError(400, "VALIDATION_ERROR", "Unknown lifecycle action",
                           {"field": "action", "allowed": list(lifecycle.ACTIONS)})
        platform = await self.check_visible(access, platform_id)
        is_admin = await access.is_platform_admin(platform.id, platform.owner_user_id)
        if not lifecycle.may_request(access.identity, action, is_platform_admin=is_admin):
            raise NNOError(403, "FORBIDDEN", f"You may not {action.replace('_', ' ')} this platform",
                           {"action": action})
        published: str | None = None
        moved_to: str | None = None
        try:
            async with self.db.session() as s:
                p = await lock_platform(s, platform_id, Write.lifecycle(action), access)
                previous = p.status
                decision = lifecycle.decide(p.status, action)
                if not decision.legal:
                    raise NNOError(409, "INVALID_TRANSITION",
                                   f"Cannot {action.replace('_', ' ')} a platform that is {p.status}",
                                   {"from": p.status, "to": decision.target, "action": action,
                                    "allowed": lifecycle.allowed_targets(p.status),
                                    "allowedActions": lifecycle.allowed_actions(p.status)})
                if not decision.noop:
                    await self._apply_transition(s, access, p, decision, reason)
                    await s.flush()
                    moved_to = decision.target
                result = serialize.platform(p)
                # Published while the row lock is held, so two transitions of one platform reach the
                # status cache in the order they commit; undone below if the commit fails.
                await self.publish_status(platform_id, result["status"])
                published = result["status"]
        except Exception:
            if published is not None and published != previous:
                await self.publish_status(platform_id, previous)
            raise
        if moved_to == "deleted":
            # Committed: now the resources go too (never undoes the delete, see deprovision.py).
            await request_deprovision(self.ctx, access, platform_id, reason)
        return result

    async def _apply_transition(self, s: AsyncSession, access: Access, p: Platform,
                                decision: lifecycle.Decision, reason: str | None) -> None:
        now = now_ms()
        before = p.status
        action = decision.action
        if action == "suspend":
            p.suspended_at, p.suspension_reason = now, reason
        elif action == "restore":
            p.suspended_at, p.suspension_reason = None, None
        elif action == "cancel":
            p.cancelled_at, p.cancellation_reason = now, reason
        elif action == "period_end":
            p.cancelled_at = p.cancelled_at or now
        elif action == "delete":
            p.deleted_at = now
        p.status = decision.target
        p.updated_at = now
        await shift_status_count(s, before, p.status)
        s.add(LifecycleEvent(id=new_id(), platform_id=p.id, from_status=before, to_status=p.status, action=action,
                             reason=reason, actor_type=access.actor_type, actor_id=access.actor_id,
                             request_id=request_id_var.get(), created_at=now))
        audit(s, access, platform_id=p.id, action="platform.status_change", target_type="platform",
              target_id=p.id, before={"status": before}, after={"status": p.status},
              metadata={"action": action, "reason": reason}, at=now)
        if action == "complete":
            await tenant_orgs.record_unlinked(s, self.ctx, p.id, now)
        if p.status == "active":
            await self._verify_onboarding(s, access, p, now)

    async def _verify_onboarding(self, s: AsyncSession, access: Access, p: Platform, now: int) -> None:
        sessions = (await s.execute(select(OnboardingSession).where(
            OnboardingSession.platform_id == p.id, OnboardingSession.status != "completed"))).scalars().all()
        if not sessions:
            return
        resources = int(await s.scalar(select(func.count()).select_from(Resource).where(
            Resource.platform_id == p.id, Resource.deleted_at.is_(None))) or 0)
        for session in sessions:
            updated = steps.verify_if_ready(session.steps, p.status, resources, now)
            if updated != session.steps:
                session.steps = updated
                session.status = steps.derive_status(updated)
                session.updated_at = now
                audit(s, access, platform_id=p.id, action="onboarding.step_update", target_type="onboarding",
                      target_id=session.id, after={"step": "verify", "status": "completed"}, at=now)

    # --- tenants ------------------------------------------------------------------------------

    @staticmethod
    def _check_org_link(access: Access, linking: bool) -> None:
        """A tenant's `orgId` names an organization in its platform's own auth database, which the
        Registry cannot look into: a client's word for it could name another customer's organization.
        So only NNO itself (services and operators) links a tenant to its organization."""
        if linking and not access.privileged:
            raise NNOError(403, "ORG_ID_RESERVED", "A tenant's orgId is set by NNO, not by the platform's clients",
                           {"field": "orgId"})

    async def _check_tier_fits(self, s: AsyncSession, p: Platform, new_tier: str) -> None:
        """A platform moves to another tier only if what it has fits there: its tenants and
        sub-tenants, its live features, and its owner's live platforms (the platform row is locked;
        the owner's count is serialised with sign-ups)."""
        counts: list[tuple[str, str, int]] = []
        if TENANT_LIMITS[new_tier] is not None:
            counts.append(("tenants", "The platform has {n} tenants and sub-tenants",
                           await self._live_entity_count(s, p.id)))
        if FEATURE_LIMITS[new_tier] is not None:
            live = await s.scalar(select(func.count(FeatureActivation.feature_id.distinct())).where(
                FeatureActivation.platform_id == p.id, FeatureActivation.status.in_(LIVE_FEATURE)))
            counts.append(("features", "The platform has {n} features active", int(live or 0)))
        if p.owner_user_id and tiers.limit(new_tier, "platforms") is not None:
            await lock_owner(s, p.owner_user_id)
            counts.append(("platforms", "Its owner has {n} platforms", await owned_platforms(s, p.owner_user_id)))
        for kind, what, current in counts:
            cap = tiers.limit(new_tier, kind)
            if cap is not None and current > cap:
                raise tiers.limit_error(new_tier, kind, current, needed=current,
                                        message=f"{what.format(n=current)}; tier {new_tier} allows {cap}: remove "
                                                f"{current - cap} first")

    async def _live_entity_count(self, s: AsyncSession, platform_id: str) -> int:
        return int(await s.scalar(select(func.count()).select_from(Entity).where(
            Entity.platform_id == platform_id, Entity.deleted_at.is_(None))) or 0)

    async def _live_entity(self, s: AsyncSession, platform_id: str, entity_id: str,
                           field: str = "tenantId") -> Entity:
        row = await s.get(Entity, entity_id)
        if row is None or row.platform_id != platform_id or row.deleted_at is not None:
            raise NNOError(404, "NOT_FOUND", "Tenant not found", {"field": field})
        return row

    async def create_tenant(self, access: Access, platform_id: str, body: TenantCreate,
                            parent_id: str | None = None) -> dict[str, Any]:
        await self.check_may_write(access, platform_id)
        self._check_org_link(access, body.orgId is not None)
        now = now_ms()
        try:
            async with self.db.session() as s:
                p = await lock_platform(s, platform_id, Write.grow(
                    "create a tenant" if parent_id is None else "create a sub-tenant"), access)
                if parent_id is not None:
                    parent = await self._live_entity(s, platform_id, parent_id)
                    if parent.parent_id is not None:
                        raise NNOError(400, "NESTING_TOO_DEEP",
                                       "Sub-tenants nest one level: under a tenant, not under a sub-tenant",
                                       {"parentId": parent_id})
                limit = TENANT_LIMITS[p.tier]
                current = await self._live_entity_count(s, platform_id) if limit is not None else 0
                if limit is not None and current >= limit:
                    raise tiers.limit_error(p.tier, "tenants", current,
                                            message=f"Tier {p.tier} allows {limit} tenants and sub-tenants")
                row = Entity(id=new_id(), platform_id=platform_id, parent_id=parent_id,
                             type="tenant" if parent_id is None else "sub_tenant", name=body.name, slug=body.slug,
                             status="active", org_id=body.orgId, created_at=now, updated_at=now)
                s.add(row)
                out = serialize.entity(row)
                # The rows go in the transaction's one flush, at its end (a taken slug fails there).
                tenant_orgs.record(s, self.ctx, row, now)
                audit(s, access, platform_id=platform_id, entity_id=row.id, action="entity.create",
                      target_type="entity", target_id=row.id, after=out, at=now)
        except IntegrityError as exc:
            raise (slug_taken(exc, "tenant") or exc) from None
        return out

    async def list_tenants(self, access: Access, platform_id: str, *, parent_id: str | None, limit: int | None,
                           cursor: str | None) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        async with self.db.session() as s:
            if parent_id is not None:
                await self._live_entity(s, platform_id, parent_id)
                where = [Entity.parent_id == parent_id, Entity.deleted_at.is_(None)]
            else:
                where = [Entity.platform_id == platform_id, Entity.parent_id.is_(None), Entity.deleted_at.is_(None)]
            return await page(s, Entity, where, limit=limit, cursor=cursor, serialize=serialize.entity)

    async def get_tenant(self, access: Access, platform_id: str, tenant_id: str) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        async with self.db.session() as s:
            return serialize.entity(await self._live_entity(s, platform_id, tenant_id))

    async def update_tenant(self, access: Access, platform_id: str, tenant_id: str,
                            body: TenantUpdate) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        changes = body.model_dump(exclude_unset=True)
        self._check_org_link(access, "orgId" in changes)
        if "name" in changes and changes["name"] is None:
            raise NNOError(400, "VALIDATION_ERROR", "name cannot be null", {"field": "name"})
        if "status" in changes and changes["status"] is None:
            raise NNOError(400, "VALIDATION_ERROR", "status cannot be null", {"field": "status"})
        async with self.db.session() as s:
            await lock_platform(s, platform_id, Write.configure("update a tenant"), access)
            row = await self._live_entity(s, platform_id, tenant_id)
            before = serialize.entity(row)
            for field, column in (("name", "name"), ("status", "status"), ("orgId", "org_id")):
                if field in changes:
                    setattr(row, column, changes[field])
            after = serialize.entity(row)
            if after != before:
                row.updated_at = now_ms()
                after = serialize.entity(row)
                if after["name"] != before["name"]:
                    tenant_orgs.record(s, self.ctx, row)
                audit(s, access, platform_id=platform_id, entity_id=row.id, action="entity.update",
                      target_type="entity", target_id=row.id, before=before, after=after)
            return after

    async def delete_tenant(self, access: Access, platform_id: str, tenant_id: str) -> dict[str, Any]:
        """Soft delete; sub-tenants go with their tenant. A tenant that owns stacks stays."""
        await self.check_visible(access, platform_id)
        now = now_ms()
        async with self.db.session() as s:
            await lock_platform(s, platform_id, Write.cleanup("delete a tenant"), access)
            row = await self._live_entity(s, platform_id, tenant_id)
            children = list((await s.execute(select(Entity).where(
                Entity.parent_id == row.id, Entity.deleted_at.is_(None)))).scalars().all())
            doomed = [row, *children]
            owning = (await s.execute(select(Stack.id).where(
                Stack.platform_id == platform_id, Stack.tenant_id.in_([e.id for e in doomed]),
                Stack.status != "deactivated"))).scalars().all()
            if owning:
                raise NNOError(409, "TENANT_HAS_STACKS", "Deactivate the tenant's stacks first",
                               {"stacks": sorted(owning)})
            for entity in doomed:
                before = serialize.entity(entity)
                entity.status, entity.deleted_at, entity.updated_at = "deleted", now, now
                tenant_orgs.record(s, self.ctx, entity, now)
                audit(s, access, platform_id=platform_id, entity_id=entity.id, action="entity.delete",
                      target_type="entity", target_id=entity.id, before=before, after=serialize.entity(entity),
                      at=now)
            return serialize.entity(row)

    # --- stacks -------------------------------------------------------------------------------

    async def create_stack(self, access: Access, platform_id: str, body: StackCreate) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        if body.name.lower() == DEFAULT_STACK_ID:
            raise NNOError(400, "RESERVED_NAME", "'default' is reserved for the platform's default stack",
                           {"field": "name"})
        now = now_ms()
        async with self.db.session() as s:
            await lock_platform(s, platform_id, Write.grow("create a stack"), access)
            await self._live_entity(s, platform_id, body.tenantId)
            if body.isDefault:
                raise NNOError(409, "DEFAULT_STACK_EXISTS", "The platform already has its default stack",
                               {"stackId": DEFAULT_STACK_ID})
            row = Stack(platform_id=platform_id, id=new_id(), tenant_id=body.tenantId, name=body.name,
                        is_default=False, template_id=body.templateId, repo_name=body.repoName, status="pending",
                        created_at=now, updated_at=now)
            s.add(row)
            out = serialize.stack(row)
            audit(s, access, platform_id=platform_id, entity_id=body.tenantId, action="stack.create",
                  target_type="stack", target_id=row.id, after=out, at=now)
            return out

    async def list_stacks(self, access: Access, platform_id: str, *, limit: int | None,
                          cursor: str | None) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        async with self.db.session() as s:
            return await page(s, Stack, [Stack.platform_id == platform_id], limit=limit, cursor=cursor,
                              serialize=serialize.stack)

    async def _stack(self, s: AsyncSession, platform_id: str, stack_id: str) -> Stack:
        row = await s.get(Stack, (platform_id, stack_id))
        if row is None:
            raise NNOError(404, "NOT_FOUND", "Stack not found")
        return row

    async def get_stack(self, access: Access, platform_id: str, stack_id: str) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        async with self.db.session() as s:
            return serialize.stack(await self._stack(s, platform_id, stack_id))

    async def update_stack(self, access: Access, platform_id: str, stack_id: str,
                           body: StackUpdate) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        changes = body.model_dump(exclude_unset=True)
        managed = sorted({"status", "templateVersion"} & set(changes))
        if managed and not access.privileged:
            raise NNOError(403, "FORBIDDEN", "Only NNO operators and services change a stack's status and "
                           "template version", {"fields": managed})
        for field in ("name", "status"):
            if field in changes and changes[field] is None:
                raise NNOError(400, "VALIDATION_ERROR", f"{field} cannot be null", {"field": field})
        # Deactivating a stack (or recording that its job failed) is cleanup; anything else configures it.
        winding_down = set(changes) == {"status"} and changes["status"] in STACK_WIND_DOWN
        write = Write.cleanup("wind down a stack") if winding_down else Write.configure("update a stack")
        async with self.db.session() as s:
            await lock_platform(s, platform_id, write, access)
            row = await self._stack(s, platform_id, stack_id)
            if "name" in changes and changes["name"] != row.name and (
                    row.is_default or changes["name"].lower() == DEFAULT_STACK_ID):
                raise NNOError(400, "RESERVED_NAME", "The name 'default' belongs to the default stack only",
                               {"field": "name"})
            before = serialize.stack(row)
            for field, column in (("name", "name"), ("templateId", "template_id"),
                                  ("templateVersion", "template_version"), ("repoName", "repo_name"),
                                  ("status", "status")):
                if field in changes:
                    setattr(row, column, changes[field])
            after = serialize.stack(row)
            if after != before:
                row.updated_at = now_ms()
                after = serialize.stack(row)
                audit(s, access, platform_id=platform_id, entity_id=row.tenant_id, action="stack.update",
                      target_type="stack", target_id=row.id, before=before, after=after)
            return after
