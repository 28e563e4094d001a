"""Registry tenants become organizations on their platform's own auth Worker (Better Auth
organizations = NNO tenants), reliably and without a remote call in the tenant's request.

- **Outbox.** Creating, renaming or deleting a top-level tenant adds a `tenant_org_outbox` row in the
  same transaction (`record`): the need is committed exactly when the tenant change is.
- **Provisioned.** The default tenant is made with its platform, before the auth Worker exists; so
  the transition that ends provisioning (`complete`, provisioning → active) records a row, in the
  same transaction, for every live top-level tenant not yet linked to an organization
  (`record_unlinked`) once its default stack, which hosts the auth Worker, is active: the default
  tenant and any made while provisioning ran get their organization at once instead of after
  back-off, and a platform never provisioned (even one moved to active by hand) makes no calls.
- **Dispatcher.** A loop in every Registry process (`TenantOrgDispatcher`, woken at once by the
  process that wrote the row, else polling) claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
  with a lease, so processes never deliver one row together) and brings the organization in line
  with the tenant as it is *now*: `PUT /api/nno/tenant-orgs/{orgId}` `{name, slug}` while it lives,
  `DELETE` once it is deleted, through `AuthWorkerClient`. The organization's id is the tenant's id
  (or the `orgId` NNO linked it to), so a delivery repeated after a lost answer changes nothing more.
- **Retries.** A failed delivery that may succeed later (Worker down or not deployed yet, IAM down)
  is tried again after an exponential back-off with jitter (`NNO_JOB_BACKOFF_BASE` doubling, at most
  `MAX_BACKOFF_S`); a refusal that cannot (a 4xx) marks the row `failed` with the reason. A platform
  that is gone drops its rows.
- On the first success the tenant records the organization as its `orgId` (audited).

Sub-tenants stay inside their tenant's organization: only top-level tenants are synced.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import structlog
from sqlalchemy import BigInteger, Index, Integer, String, Text, delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from nno.kernel.aio import stop_task
from nno.kernel.clock import now_ms
from nno.kernel.dbfaults import LoopFailures, database_unavailable
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.ids import new_id
from nno.kernel.platform_status import GONE_STATUSES
from nno.kernel.service import ServiceContext
from nno.registry import serialize
from nno.registry.access import Access
from nno.registry.auth_worker import AuthWorkerClient, AuthWorkerError
from nno.registry.models import Base, Entity, Platform, Stack
from nno.registry.naming import DEFAULT_STACK_ID
from nno.registry.store import audit

log = structlog.get_logger("nno.registry.tenant_orgs")

PENDING, FAILED = "pending", "failed"
LEASE_MS = 60_000  # a claimed row is another process's again if its claimer died mid-delivery
MAX_BACKOFF_S = 600.0
IDLE_POLL_S = 2.0
BATCH = 50


class TenantOrgOutbox(Base):
    __tablename__ = "tenant_org_outbox"

    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(10))
    tenant_id: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_tenant_org_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_tenant_org_outbox_tenant_id", "tenant_id"),
    )


def record(s: AsyncSession, ctx: ServiceContext, entity: Entity, now: int | None = None) -> None:
    """In the transaction that changes `entity`: its organization must follow."""
    if entity.parent_id is not None:
        return
    at = now or now_ms()
    s.add(TenantOrgOutbox(id=new_id(), platform_id=entity.platform_id, tenant_id=entity.id, status=PENDING,
                          attempts=0, next_attempt_at=at, created_at=at))
    # Woken once the row is committed (not before: it would find nothing yet).
    kick = TenantOrgDispatcher.of(ctx).kick
    event.listen(s.sync_session, "after_commit", lambda _session: kick(), once=True)


async def record_unlinked(s: AsyncSession, ctx: ServiceContext, platform_id: str, now: int | None = None) -> int:
    """In the transaction that makes the platform active: every live top-level tenant without an
    organization gets one (an earlier row still in back-off only repeats an idempotent delivery).
    Only once provisioning has made the default stack, which hosts the auth Worker, active: a
    platform moved to active by hand, with no Worker, records nothing to retry."""
    if not await hosted(s, platform_id):
        return 0
    tenants = (await s.execute(select(Entity).where(
        Entity.platform_id == platform_id, Entity.parent_id.is_(None), Entity.deleted_at.is_(None),
        Entity.org_id.is_(None)))).scalars().all()
    for entity in tenants:
        record(s, ctx, entity, now)
    return len(tenants)


async def hosted(s: AsyncSession, platform_id: str) -> bool:
    """Whether the platform has its auth Worker: its default stack, which hosts it, is active."""
    status = (await s.execute(select(Stack.status).where(
        Stack.platform_id == platform_id, Stack.id == DEFAULT_STACK_ID))).scalar_one_or_none()
    return status == "active"


def backoff_s(attempts: int, base_s: float) -> float:
    """Seconds before attempt `attempts + 1`: doubling from `base_s`, capped, with jitter so many
    rows failing together do not come back together."""
    ceiling = min(MAX_BACKOFF_S, max(base_s, 0.05) * (2 ** min(attempts, 20)))
    return random.uniform(ceiling / 2, ceiling)


class TenantOrgDispatcher:
    EXTRAS_KEY = "registry.tenant_org_dispatcher"

    def __init__(self, ctx: ServiceContext, client: AuthWorkerClient | None = None) -> None:
        self.ctx = ctx
        self.client = client or AuthWorkerClient(ctx)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, ctx: ServiceContext) -> TenantOrgDispatcher:
        found = ctx.extras.get(cls.EXTRAS_KEY)
        if found is None:
            found = ctx.extras[cls.EXTRAS_KEY] = cls(ctx)
        return found

    def kick(self) -> None:
        self._wake.set()

    async def _claim(self, now: int) -> list[tuple[str, str, str, int]]:
        """(id, platform, tenant, attempts) of the due rows, leased to this process."""
        async with self.ctx.db.session() as s:
            rows = list((await s.execute(
                select(TenantOrgOutbox)
                .where(TenantOrgOutbox.status == PENDING, TenantOrgOutbox.next_attempt_at <= now)
                .order_by(TenantOrgOutbox.next_attempt_at, TenantOrgOutbox.created_at)
                .limit(BATCH).with_for_update(skip_locked=True))).scalars().all())
            claimed = [(r.id, r.platform_id, r.tenant_id, r.attempts) for r in rows]
            for row in rows:
                row.next_attempt_at = now + LEASE_MS
        return claimed

    async def drain(self, now: int | None = None) -> int:
        """Deliver every due row once; how many tenants were brought in line."""
        async with self._lock:
            rows = await self._claim(now or now_ms())
            by_tenant: dict[tuple[str, str], list[str]] = {}
            attempts: dict[tuple[str, str], int] = {}
            for row_id, platform_id, tenant_id, tries in rows:
                key = (platform_id, tenant_id)
                by_tenant.setdefault(key, []).append(row_id)
                attempts[key] = max(attempts.get(key, 0), tries)
            done = 0
            for (platform_id, tenant_id), ids in by_tenant.items():
                try:
                    outcome = await self._deliver(platform_id, tenant_id)
                except AuthWorkerError as exc:
                    await self._failed(ids, attempts[(platform_id, tenant_id)], exc)
                    continue
                except Exception as exc:
                    if database_unavailable(exc):
                        raise  # the round ends here; the rows' leases expire and they are tried again
                    log.exception("tenant_org_sync_crashed", platformId=platform_id, tenantId=tenant_id)
                    await self._failed(ids, attempts[(platform_id, tenant_id)],
                                       AuthWorkerError(repr(exc), status=500, code="INTERNAL", retryable=True))
                    continue
                async with self.ctx.db.session() as s:
                    await s.execute(delete(TenantOrgOutbox).where(TenantOrgOutbox.id.in_(ids)))
                log.info("tenant_org_synced", platformId=platform_id, tenantId=tenant_id, outcome=outcome)
                done += 1
            return done

    async def _failed(self, ids: list[str], attempts: int, exc: AuthWorkerError) -> None:
        delay = backoff_s(attempts, self.ctx.settings.job_backoff_base_s)
        values: dict[str, Any] = {"attempts": attempts + 1, "last_error": str(exc)[:1000],
                                  "next_attempt_at": now_ms() + int(delay * 1000)}
        if not exc.retryable:
            values["status"] = FAILED
        async with self.ctx.db.session() as s:
            await s.execute(update(TenantOrgOutbox).where(TenantOrgOutbox.id.in_(ids)).values(**values))
        log.warning("tenant_org_sync_failed", ids=ids, error=str(exc), retryable=exc.retryable,
                    retry_in_s=round(delay, 2) if exc.retryable else None)

    async def _deliver(self, platform_id: str, tenant_id: str) -> str:
        async with self.ctx.db.session() as s:
            platform = await s.get(Platform, platform_id)
            entity = await s.get(Entity, tenant_id)
            state = None if entity is None else (entity.name, entity.slug, entity.org_id, entity.deleted_at)
            has_worker = await hosted(s, platform_id)
        if platform is None or platform.status in GONE_STATUSES:
            return "platform-gone"
        if not has_worker:
            # Nothing to deliver to (never provisioned, or provisioning still running): the transaction
            # that makes the platform active records every tenant still without an organization.
            return "not-hosted"
        if state is None:
            return "no-tenant"
        name, slug, org_id, deleted_at = state
        target = org_id or tenant_id
        if deleted_at is not None:
            removed = await self.client.delete_tenant_org(platform_id, target)
            return "deleted" if removed else "absent"
        answer = await self.client.put_tenant_org(platform_id, target, name=name, slug=slug)
        if org_id is None:
            await self._link(platform_id, tenant_id, str(answer.get("id") or target))
        return "created" if answer.get("created") else "updated"

    async def _link(self, platform_id: str, tenant_id: str, org_id: str) -> None:
        access = Access(SERVICE_IDENTITY, None)
        async with self.ctx.db.session() as s:
            row = await s.get(Entity, tenant_id)
            if row is None or row.org_id is not None:
                return
            before = serialize.entity(row)
            row.org_id, row.updated_at = org_id, now_ms()
            audit(s, access, platform_id=platform_id, entity_id=row.id, action="entity.update",
                  target_type="entity", target_id=row.id, before=before, after=serialize.entity(row),
                  metadata={"reason": "organization created on the platform's auth Worker"})

    async def run(self) -> None:
        failures = LoopFailures(log, "tenant_org_dispatch_failed")
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL_S)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.drain()
            except Exception as exc:  # the database is away: the next round tries again
                failures.failed(exc)
            else:
                failures.succeeded()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
