"""Shared pieces of the Registry's service layer: keyset paging, the audit writer, the platform row
lock, the visibility check and the status cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from nno.kernel import tiers
from nno.kernel.aio import stop_task
from nno.kernel.clock import now_ms
from nno.kernel.context import request_id_var
from nno.kernel.db import transaction_lock
from nno.kernel.dbfaults import LoopFailures
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id
from nno.kernel.kv import KeyValueStore, KVUnavailable
from nno.kernel.pagination import check_limit, decode_cursor, encode_cursor
from nno.kernel.platform_status import status_cache_key
from nno.kernel.service import ServiceContext
from nno.registry.access import Access
from nno.registry.gone import Write, check_write
from nno.registry.models import AuditLog, Platform, PlatformStatusCount

log = structlog.get_logger("nno.registry")

# The tiers' count limits live once in nno.kernel.tiers (Billing sells them).
TENANT_LIMITS: dict[str, int | None] = {t: tiers.limit(t, "tenants") for t in tiers.TIER_NAMES}
FEATURE_LIMITS: dict[str, int | None] = {t: tiers.limit(t, "features") for t in tiers.TIER_NAMES}
# Feature activation statuses that count against the tier's feature limit.
LIVE_FEATURE = ("pending", "active", "deactivating")
# Ids that are path words of the Registry's own routes; a platform id never takes one of them.
RESERVED_IDS = frozenset({"onboarding"})


def new_platform_id() -> str:
    while True:
        pid = new_id()
        if pid not in RESERVED_IDS:
            return pid


async def page(
    session: AsyncSession,
    model: Any,
    where: Sequence[ColumnElement[bool]],
    *,
    limit: int | None,
    cursor: str | None,
    serialize: Callable[[Any], dict[str, Any]],
    newest_first: bool = False,
    total_stmt: Select[Any] | None = None,
) -> dict[str, Any]:
    """One page of `model` rows matching `where`, keyset-ordered by (created_at, id). `total_stmt`
    replaces the count(*) over `where` when a cheaper exact total exists."""
    size = check_limit(limit)
    key = tuple_(model.created_at, model.id)
    stmt: Select[Any] = select(model).where(*where)
    if cursor is not None:
        values = decode_cursor(cursor, ("c", "i"), int_keys=("c",))
        created, ident = values["c"], values["i"]
        if not isinstance(created, int) or isinstance(created, bool) or not isinstance(ident, str):
            raise NNOError(400, "INVALID_CURSOR", "The cursor is not valid")
        bound = tuple_(created, ident)
        stmt = stmt.where(key < bound if newest_first else key > bound)
    if newest_first:
        stmt = stmt.order_by(model.created_at.desc(), model.id.desc())
    else:
        stmt = stmt.order_by(model.created_at, model.id)
    rows = list((await session.execute(stmt.limit(size + 1))).scalars().all())
    has_more = len(rows) > size
    rows = rows[:size]
    if total_stmt is None:
        total_stmt = select(func.count()).select_from(model).where(*where)
    total = await session.scalar(total_stmt)
    next_cursor = encode_cursor({"c": rows[-1].created_at, "i": rows[-1].id}) if has_more and rows else None
    return {
        "data": [serialize(r) for r in rows],
        "pagination": {"hasMore": has_more, "nextCursor": next_cursor, "total": int(total or 0)},
    }


def audit(
    session: AsyncSession,
    access: Access,
    *,
    platform_id: str | None,
    action: str,
    target_type: str,
    target_id: str | None,
    before: Any = None,
    after: Any = None,
    entity_id: str | None = None,
    metadata: Any = None,
    at: int | None = None,
) -> AuditLog:
    row = AuditLog(
        id=new_id(),
        platform_id=platform_id,
        entity_id=entity_id,
        actor_type=access.actor_type,
        actor_id=access.actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        request_id=request_id_var.get(),
        before=before,
        after=after,
        meta=metadata,
        created_at=at or now_ms(),
    )
    session.add(row)
    return row


async def lock_platform(session: AsyncSession, platform_id: str, write: Write, access: Access) -> Platform:
    """Take the platform row's write lock for the rest of the transaction and return it fresh, after
    checking that `write` may happen in the platform's status for this caller (`gone.check_write`: a
    cancelled or deleted platform only sheds what it has; a suspended one takes writes from services
    and operators only).

    A no-op UPDATE (returning the row, one statement) locks the row on PostgreSQL and takes SQLite's
    write lock before anything is read, so count-then-insert checks (tenant limits, feature limits,
    transitions, the gone-platform rule) cannot race.
    """
    row = (
        await session.execute(
            update(Platform).where(Platform.id == platform_id).values(updated_at=Platform.updated_at)
            .returning(Platform).execution_options(populate_existing=True, synchronize_session=False)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NNOError(404, "NOT_FOUND", "Platform not found")
    check_write(row.id, row.status, write, privileged=access.privileged)
    return row


async def lock_owner(session: AsyncSession, owner_user_id: str) -> None:
    """Serialise, for the rest of the transaction, the checks that count one owner's platforms (two
    onboardings at once must not both pass the tier's platform limit)."""
    await transaction_lock(session, f"nno-owner:{owner_user_id}", Platform.updated_at)


async def shift_status_count(session: AsyncSession, from_status: str | None, to_status: str) -> None:
    """Move one platform between status counters. Rows are updated in name order so concurrent
    transitions (each already holding its platform's row lock) never wait on each other in a cycle."""
    deltas = {to_status: 1} if from_status is None else {from_status: -1, to_status: 1}
    for status in sorted(deltas):
        await session.execute(update(PlatformStatusCount).where(PlatformStatusCount.status == status)
                              .values(count=PlatformStatusCount.count + deltas[status]))


def platform_total(status: str | None) -> Select[Any]:
    stmt = select(func.coalesce(func.sum(PlatformStatusCount.count), 0))
    return stmt.where(PlatformStatusCount.status == status) if status is not None else stmt


class StatusRepublisher:
    """Platforms whose status the Registry could not write to the shared cache (Redis down): their
    current status is written again, under the row lock, once the cache answers. Cache keys also
    expire after `NNO_STATUS_CACHE_TTL`, so even a status this process never gets to re-publish (it
    died) is wrong at the gateway for at most that long."""

    EXTRAS_KEY = "registry.status_republisher"

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, ctx: ServiceContext) -> StatusRepublisher:
        found = ctx.extras.get(cls.EXTRAS_KEY)
        if found is None:
            found = ctx.extras[cls.EXTRAS_KEY] = cls(ctx)
        return found

    def add(self, platform_id: str) -> None:
        self.pending.add(platform_id)

    async def flush(self) -> bool:
        """Write every pending status; False when the cache is still unreachable."""
        for platform_id in sorted(self.pending):
            try:
                async with self.ctx.db.session() as s:
                    # The row lock orders this write after any transition's own publish and commit.
                    await s.execute(update(Platform).where(Platform.id == platform_id)
                                    .values(updated_at=Platform.updated_at))
                    status = (await s.execute(select(Platform.status).where(Platform.id == platform_id))
                              ).scalar_one_or_none()
                    key = status_cache_key(platform_id)
                    if status is None:
                        await self.ctx.kv.delete(key)
                    else:
                        await self.ctx.kv.set(key, status, self.ctx.settings.status_cache_ttl_s)
            except KVUnavailable:
                return False
            self.pending.discard(platform_id)
            log.info("status_cache_republished", platform_id=platform_id, status=status)
        return True

    async def run(self, interval_s: float) -> None:
        failures = LoopFailures(log, "status_cache_republish_failed")
        while True:
            await asyncio.sleep(interval_s)
            if not self.pending:
                continue
            try:
                await self.flush()
            except Exception as exc:  # a database blip: the next round tries again
                failures.failed(exc)
            else:
                failures.succeeded()

    async def start(self) -> None:
        # Well inside the TTL, so a recovered cache holds the right status long before keys expire.
        interval = min(1.0, max(self.ctx.settings.status_cache_ttl_s / 4, 0.05))
        self._task = asyncio.get_running_loop().create_task(self.run(interval))

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None


class RegistryBase:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.kv: KeyValueStore = ctx.kv

    async def visible_platform(self, session: AsyncSession, access: Access, platform_id: str) -> Platform:
        """The platform, if this caller may see it; otherwise the same 404 as an unknown id."""
        access.require_authenticated()
        row = await session.get(Platform, platform_id)
        if row is None or not await access.can_see(row.id, row.owner_user_id):
            raise NNOError(404, "NOT_FOUND", "Platform not found")
        return row

    async def check_visible(self, access: Access, platform_id: str) -> Platform:
        """Visibility in its own short read (it may ask IAM), before a write transaction starts."""
        async with self.db.session() as s:
            return await self.visible_platform(s, access, platform_id)

    async def check_may_write(self, access: Access, platform_id: str) -> None:
        """`check_visible` for a write whose transaction starts with `lock_platform`. Privileged
        callers see every platform and `lock_platform` answers an unknown one with the same 404, so
        they skip the extra read."""
        if access.privileged:
            access.require_authenticated()
            return
        await self.check_visible(access, platform_id)

    async def forget_status(self, platform_id: str) -> None:
        try:
            await self.kv.delete(status_cache_key(platform_id))
        except Exception as exc:
            self._not_written(platform_id, exc)

    def _not_written(self, platform_id: str, exc: Exception) -> None:
        if not isinstance(exc, KVUnavailable):  # an outage is logged once by the KV itself
            log.error("status_cache_write_failed", platform_id=platform_id, error=repr(exc))
        StatusRepublisher.of(self.ctx).add(platform_id)

    async def kv_missing(self, platform_id: str) -> bool:
        try:
            return await self.kv.get(status_cache_key(platform_id)) is None
        except Exception:
            return False  # the cache misbehaves: nothing to refill

    async def publish_status(self, platform_id: str, status: str) -> None:
        """Write-through to the gateway's status cache (DECISIONS 5). Entries expire after
        `NNO_STATUS_CACHE_TTL`; a write the cache refused is retried by the `StatusRepublisher`."""
        try:
            await self.kv.set(status_cache_key(platform_id), status, self.ctx.settings.status_cache_ttl_s)
        except Exception as exc:
            self._not_written(platform_id, exc)
