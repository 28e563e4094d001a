"""Billing's service layer: subscriptions, the local ledger (invoices, payment attempts, period
ends on an advanceable clock), dunning, usage and threshold alerts.

Every write to Billing's tables happens in one transaction; what the Registry must learn (a new
customer id, cancel, period end, suspend, restore) is sent after the commit. A lifecycle call the
Registry cannot take now is kept on the subscription (`registry_pending`) and retried by the
scheduler, so an outage delays a suspension but never loses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nno.billing import ledger
from nno.billing.clients import IamClient, RegistryClient, RegistryUnavailable
from nno.billing.config import BillingSettings
from nno.billing.mail import send_mail
from nno.billing.models import (
    AuditEntry,
    Clock,
    Customer,
    Invoice,
    Subscription,
    UsageAlert,
    UsageDaily,
    UsageEvent,
    UsageMonthly,
)
from nno.billing.provider import Provider, ProviderSubscription
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id
from nno.kernel.pagination import check_limit, decode_cursor, encode_cursor
from nno.kernel.service import ServiceContext
from nno.kernel.tiers import GAUGE_METRICS, METRICS, TIER_NAMES

log = structlog.get_logger("nno.billing")

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
ALERT_THRESHOLDS = (80, 100)
STACK_CACHE_SIZE = 100_000  # (platform, stack) → tenant answers kept in memory
REGISTRY_CONCURRENCY = 16  # stack lookups in flight at once for one batch
ALERT_BATCH = 500  # subscriptions per aggregate usage query of the threshold check
# Registry lifecycle actions Billing drives, with the reason it gives.
REASONS = {
    "cancel": "Subscription cancelled at period end",
    "period_end": "Billing period ended after cancellation",
    "suspend": "Payment overdue beyond the grace period",
    "restore": "Overdue payment received",
}
Actor = tuple[str, str | None]
PG_INGEST = text(
    "WITH ins AS (INSERT INTO usage_events (id, platform_id, tenant_id, metric, quantity, occurred_at) "
    "SELECT * FROM unnest(CAST(:ids AS varchar[]), CAST(:platforms AS varchar[]), CAST(:tenants AS varchar[]), "
    "CAST(:metrics AS varchar[]), CAST(:quantities AS bigint[]), CAST(:times AS bigint[])) "
    "ON CONFLICT (id) DO NOTHING RETURNING 1) SELECT count(*) FROM ins")
SYSTEM: Actor = ("system", None)


@dataclass
class Effects:
    """What to do after the commit: Registry lifecycle actions and mails."""

    lifecycle: list[tuple[str, str]] = field(default_factory=list)  # (platform_id, action)
    mails: list[tuple[str, str, str]] = field(default_factory=list)  # (to, subject, body)


def serialize_subscription(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id, "platformId": sub.platform_id, "customerId": sub.customer_id, "provider": sub.provider,
        "tier": sub.tier, "status": sub.status,
        "state": "pending_cancellation" if sub.cancel_at_period_end and sub.status != "canceled" else sub.status,
        "cancelAtPeriodEnd": sub.cancel_at_period_end,
        "currentPeriodStart": sub.current_period_start, "currentPeriodEnd": sub.current_period_end,
        "trialEnd": sub.trial_end, "pastDueSince": sub.past_due_since,
        "suspendedForNonPayment": sub.suspended_by_billing, "canceledAt": sub.canceled_at,
        "createdAt": sub.created_at, "updatedAt": sub.updated_at,
    }


def serialize_invoice(inv: Invoice) -> dict[str, Any]:
    return {
        "id": inv.id, "platformId": inv.platform_id, "subscriptionId": inv.subscription_id, "reason": inv.reason,
        "status": inv.status, "periodStart": inv.period_start, "periodEnd": inv.period_end,
        "subtotalCents": inv.subtotal_cents, "creditAppliedCents": inv.credit_applied_cents,
        "amountDueCents": inv.amount_due_cents, "amountPaidCents": inv.amount_paid_cents, "currency": "usd",
        "lines": inv.lines, "attemptCount": inv.attempt_count, "nextAttemptAt": inv.next_attempt_at,
        "createdAt": inv.created_at, "paidAt": inv.paid_at,
    }


def fold_usage(rows: Iterable[tuple[str, str, str, Any, Any]], by_tenant: bool = False
               ) -> dict[str, dict[tuple[str, str], int]]:
    """Rows of (platform, metric, tenant, sum, max) into {platform: {(metric, tenant): quantity}}.
    A count is the sum of its events. A gauge (R2 storage) is each tenant's peak reading; a
    platform's is the sum of its tenants' peaks (each tenant is measured on its own)."""
    out: dict[str, dict[tuple[str, str], int]] = {}
    for platform_id, metric, tenant, total, peak in rows:
        value = int(peak if metric in GAUGE_METRICS else total)
        key = (metric, tenant if by_tenant else "")
        per = out.setdefault(platform_id, {})
        per[key] = per.get(key, 0) + value
    return out


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """INSERT with the engine's ON CONFLICT support (both dialects spell it the same)."""
    return (sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert)(table)


class BillingService:
    def __init__(self, ctx: ServiceContext, settings: BillingSettings, provider: Provider) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.settings = settings
        self.provider = provider
        self.tiers = settings.tiers
        self.prices = settings.overage_prices
        self.registry = RegistryClient(ctx)
        self._stack_tenants: dict[tuple[str, str], str] = {}

    # --- time -----------------------------------------------------------------------------------

    async def now(self) -> int:
        """Billing time: the wall clock, plus the local provider's test-clock offset."""
        if not self.provider.runs_ledger:
            return now_ms()
        async with self.db.session() as s:
            row = await s.get(Clock, "local")
        return now_ms() + (row.offset_ms if row else 0)

    async def advance_clock(self, ms: int, actor: Actor) -> dict[str, Any]:
        if not self.provider.runs_ledger:
            raise NNOError(409, "NOT_SUPPORTED", "The test clock belongs to the local billing provider")
        if ms <= 0:
            raise NNOError(400, "VALIDATION_ERROR", "Advance by a positive amount", {"field": "seconds"})
        async with self.db.session() as s:
            row = await s.get(Clock, "local", with_for_update=True)
            if row is None:
                row = Clock(id="local", offset_ms=0)
                s.add(row)
            row.offset_ms += ms
            offset = row.offset_ms
            self._audit(s, None, actor, "clock.advance", {"byMs": ms, "offsetMs": offset})
        return {"offsetMs": offset, "now": now_ms() + offset}

    # --- reads ------------------------------------------------------------------------------------

    def plans(self) -> list[dict[str, Any]]:
        return [self.tiers[name].to_json(self.prices) for name in TIER_NAMES]

    async def subscription(self, platform_id: str) -> dict[str, Any] | None:
        async with self.db.session() as s:
            sub = await self._sub(s, platform_id)
            return serialize_subscription(sub) if sub else None

    async def _sub(self, s: AsyncSession, platform_id: str, *, lock: bool = False) -> Subscription | None:
        stmt = select(Subscription).where(Subscription.platform_id == platform_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await s.execute(stmt)).scalar_one_or_none()

    async def _require_sub(self, s: AsyncSession, platform_id: str, *, lock: bool = False) -> Subscription:
        sub = await self._sub(s, platform_id, lock=lock)
        if sub is None:
            raise NNOError(404, "NOT_FOUND", "This platform has no subscription")
        return sub

    async def invoices(self, platform_id: str, limit: int | None, cursor: str | None) -> dict[str, Any]:
        size = check_limit(limit)
        stmt = select(Invoice).where(Invoice.platform_id == platform_id)
        if cursor is not None:
            values = decode_cursor(cursor, ("c", "i"), int_keys=("c",))
            stmt = stmt.where(tuple_(Invoice.created_at, Invoice.id) < (values["c"], values["i"]))
        stmt = stmt.order_by(Invoice.created_at.desc(), Invoice.id.desc()).limit(size + 1)
        async with self.db.session() as s:
            rows = list((await s.execute(stmt)).scalars())
        more = len(rows) > size
        rows = rows[:size]
        nxt = encode_cursor({"c": rows[-1].created_at, "i": rows[-1].id}) if more and rows else None
        return {"data": [serialize_invoice(r) for r in rows],
                "pagination": {"hasMore": more, "nextCursor": nxt}}

    async def audit_log(self, platform_id: str, limit: int | None) -> list[dict[str, Any]]:
        size = check_limit(limit)
        async with self.db.session() as s:
            rows = (await s.execute(select(AuditEntry).where(AuditEntry.platform_id == platform_id)
                                    .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
                                    .limit(size))).scalars()
            return [{"id": r.id, "action": r.action, "actorType": r.actor_type, "actorId": r.actor_id,
                     "details": r.details, "createdAt": r.created_at} for r in rows]

    # --- usage ------------------------------------------------------------------------------------

    async def _period_usage(self, s: AsyncSession, platform_id: str, start: int, end: int,
                            by_tenant: bool = False) -> dict[tuple[str, str], int]:
        """{(metric, tenant): quantity} of one platform over [start, end); tenant '' unless
        `by_tenant`."""
        stmt = (select(UsageEvent.platform_id, UsageEvent.metric, UsageEvent.tenant_id, func.sum(UsageEvent.quantity),
                       func.max(UsageEvent.quantity))
                .where(UsageEvent.platform_id == platform_id, UsageEvent.occurred_at >= start,
                       UsageEvent.occurred_at < end)
                .group_by(UsageEvent.platform_id, UsageEvent.metric, UsageEvent.tenant_id))
        return fold_usage((await s.execute(stmt)).tuples(), by_tenant).get(platform_id, {})

    async def usage(self, platform_id: str, *, by_tenant: bool = False) -> dict[str, Any]:
        now = await self.now()
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id)
            totals = await self._period_usage(s, platform_id, sub.current_period_start, now + 1)
            tenants = (await self._period_usage(s, platform_id, sub.current_period_start, now + 1, True)
                       if by_tenant else {})
        tier = self.tiers[sub.tier]
        usage = {m: totals.get((m, ""), 0) for m in METRICS}
        metrics = []
        for m in METRICS:
            included = tier.included.get(m, 0)
            metrics.append({
                "metric": m, "used": usage[m], "included": included,
                "percent": round(100 * usage[m] / included, 2) if included else None,
                "overageCents": ledger.overage_cents(usage[m], included, self.prices[m]),
            })
        out: dict[str, Any] = {
            "platformId": platform_id, "tier": sub.tier, "periodStart": sub.current_period_start,
            "periodEnd": sub.current_period_end, "asOf": now, "metrics": metrics,
            "projectedOverageCents": sum(x["overageCents"] for x in metrics),
        }
        if by_tenant:
            per: dict[str, dict[str, int]] = {}
            for (m, tenant), qty in tenants.items():
                per.setdefault(tenant, {})[m] = qty
            out["tenants"] = [{"tenantId": t or None, "usage": u} for t, u in sorted(per.items())]
        return out

    async def history(self, platform_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            days = (await s.execute(select(UsageDaily.day, UsageDaily.metric, func.sum(UsageDaily.quantity))
                                    .where(UsageDaily.platform_id == platform_id)
                                    .group_by(UsageDaily.day, UsageDaily.metric)
                                    .order_by(UsageDaily.day.desc()).limit(31 * len(METRICS)))).all()
            months = (await s.execute(select(UsageMonthly).where(UsageMonthly.platform_id == platform_id)
                                      .order_by(UsageMonthly.month.desc()).limit(24 * len(METRICS)))).scalars()
            daily: dict[str, dict[str, int]] = {}
            for day, metric, qty in days:
                daily.setdefault(day, {})[metric] = int(qty)
            monthly: dict[str, dict[str, int]] = {}
            for row in months:
                monthly.setdefault(row.month, {})[row.metric] = row.quantity
        return {"platformId": platform_id,
                "daily": [{"day": d, "usage": u} for d, u in sorted(daily.items(), reverse=True)],
                "monthly": [{"month": mo, "usage": u} for mo, u in sorted(monthly.items(), reverse=True)]}

    async def ingest(self, events: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Store usage events; an id seen before is ignored (one statement, ON CONFLICT DO NOTHING)."""
        if not events:
            return {"received": 0, "inserted": 0}
        tenants = await self._tenants(events)
        times = [e.get("timestamp") for e in events]
        if None in times:  # billing time only when needed: the local clock is a database read
            now = await self.now()
            times = [now if t is None else t for t in times]
        # Column by column: the PostgreSQL statement takes one array per column.
        cols = {"ids": [e["id"] for e in events], "platforms": [e["platformId"] for e in events],
                "tenants": tenants, "metrics": [e["metric"] for e in events],
                "quantities": [e["quantity"] for e in events], "times": times}
        async with self.db.session() as s:
            if s.get_bind().dialect.name == "postgresql":
                # One statement over arrays: several times faster than a multi-row VALUES list.
                inserted = int(await s.scalar(PG_INGEST, cols) or 0)
            else:
                rows = [{"id": i, "platform_id": p, "tenant_id": t, "metric": m, "quantity": q, "occurred_at": at}
                        for i, p, t, m, q, at in zip(*cols.values(), strict=True)]
                stmt = dialect_insert(s, UsageEvent).on_conflict_do_nothing(index_elements=["id"])
                inserted = len((await s.execute(stmt.returning(UsageEvent.id), rows)).all())
        return {"received": len(events), "inserted": inserted}

    async def _tenants(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """Each event's Registry tenant: its `tenantId`, or the tenant its `stackId` belongs to
        (the local cloud knows a Worker's stack, not the tenant). A stack's tenant never changes, so
        the answers are kept; an unknown stack counts for the platform itself ('')."""
        wanted = {(e["platformId"], e["stackId"]) for e in events if not e.get("tenantId") and e.get("stackId")}
        missing = [key for key in wanted if key not in self._stack_tenants]
        if missing:
            if len(self._stack_tenants) + len(missing) > STACK_CACHE_SIZE:
                self._stack_tenants.clear()
            gate = asyncio.Semaphore(REGISTRY_CONCURRENCY)

            async def tenant_of(platform_id: str, stack_id: str) -> str | None:
                async with gate:
                    return await self.registry.stack_tenant(platform_id, stack_id)

            try:
                found = await asyncio.gather(*(tenant_of(p, st) for p, st in missing))
            except RegistryUnavailable as exc:
                # Nothing is stored: the reporter sends the batch again, with the same ids.
                raise NNOError(503, "SERVICE_UNAVAILABLE", "The Registry cannot map stacks to tenants now; "
                               "retry the batch") from exc
            self._stack_tenants.update(zip(missing, (t or "" for t in found), strict=True))
        stacks = self._stack_tenants
        return [e.get("tenantId") or (stacks[(e["platformId"], e["stackId"])] if e.get("stackId") else "")
                for e in events]

    # --- subscriptions ----------------------------------------------------------------------------

    async def start(self, platform_id: str, tier: str, email: str | None, actor: Actor) -> dict[str, Any]:
        """Onboarding: the customer and the subscription (a trial when configured), then the
        platform's `stripeCustomerId`/`trialEndsAt` in the Registry. Idempotent per platform."""
        if tier not in TIER_NAMES:
            raise NNOError(400, "VALIDATION_ERROR", "Unknown tier", {"field": "tier", "allowed": list(TIER_NAMES)})
        async with self.db.session() as s:
            existing = await self._sub(s, platform_id)
        if existing is None:
            if email is None:
                try:
                    platform = await self.registry.platform(platform_id)
                except RegistryUnavailable:
                    platform = None
                email = await billing_email(self.ctx, (platform or {}).get("ownerUserId"))
            now = await self.now()
            trial_end = now + self.settings.trial_days * DAY_MS if self.settings.trial_days else None
            customer_id = await self.provider.create_customer(platform_id, email)
            psub = await self.provider.create_subscription(customer_id, platform_id, tier, now, trial_end)
            effects = Effects()
            try:
                await self._create(platform_id, tier, email, actor, customer_id, psub, now, effects)
            except IntegrityError:
                pass  # a concurrent start for this platform won; its subscription is the one
            await self._after(effects)
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id)
            out = serialize_subscription(sub)
        try:
            await self.registry.update(platform_id, {"stripeCustomerId": out["customerId"],
                                                     "trialEndsAt": out["trialEnd"]})
        except RegistryUnavailable as exc:
            log.warning("billing_registry_update_failed", platform_id=platform_id, error=str(exc))
        return out

    async def _create(self, platform_id: str, tier: str, email: str | None, actor: Actor, customer_id: str,
                      psub: ProviderSubscription, now: int, effects: Effects) -> None:
        async with self.db.session() as s:
            if await self._sub(s, platform_id, lock=True) is None:
                s.add(Customer(id=customer_id, platform_id=platform_id, email=email, balance_cents=0,
                               payment_fails=False, created_at=now))
                sub = Subscription(
                    id=psub.id, platform_id=platform_id, customer_id=customer_id, provider=self.provider.name,
                    tier=tier, status=psub.status, cancel_at_period_end=False,
                    current_period_start=psub.period_start, current_period_end=psub.period_end,
                    trial_end=psub.trial_end, suspended_by_billing=False, created_at=now, updated_at=now)
                s.add(sub)
                await s.flush()
                self._audit(s, platform_id, actor, "subscription.create",
                            {"tier": tier, "status": sub.status, "trialEnd": psub.trial_end})
                if self.provider.runs_ledger and sub.status == "active":
                    tier_row = self.tiers[tier]
                    lines = [ledger.Line(f"{tier} plan", tier_row.price_cents, "subscription")]
                    await self._invoice(s, sub, "subscription_create", lines, sub.current_period_start,
                                        sub.current_period_end, now, effects)

    async def cancel(self, platform_id: str, actor: Actor) -> dict[str, Any]:
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id)
            if sub.status == "canceled":
                raise NNOError(409, "SUBSCRIPTION_CANCELED", "The subscription has already ended")
            already = sub.cancel_at_period_end
        if not already:
            await self.provider.cancel_at_period_end(sub.id)
        effects = Effects()
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id, lock=True)
            if not sub.cancel_at_period_end:
                sub.cancel_at_period_end = True
                sub.updated_at = await self._now_in(s)
                self._audit(s, platform_id, actor, "subscription.cancel", {"periodEnd": sub.current_period_end})
                sub.registry_pending = "cancel"
            effects.lifecycle.append((platform_id, "cancel"))
            out = serialize_subscription(sub)
        await self._after(effects)
        return out

    async def preview(self, platform_id: str, tier: str) -> dict[str, Any]:
        """The proration of a tier change now: the local ledger's own, or, when the provider keeps
        the ledger (Stripe), the provider's invoice preview."""
        now = await self.now()
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id)
        lines = self._proration(sub, tier, now)
        subtotal = sum(line.amount_cents for line in lines)
        due = max(0, subtotal)
        if not self.provider.runs_ledger and lines:
            previewed = await self.provider.preview_change(sub.id, tier, now)
            if previewed is not None:
                lines, due = previewed.lines, previewed.amount_due_cents
                subtotal = sum(line.amount_cents for line in lines)
        return {"platformId": platform_id, "fromTier": sub.tier, "toTier": tier, "prorationDate": now,
                "periodEnd": sub.current_period_end, "provider": self.provider.name,
                "lines": [line.to_json() for line in lines], "amountDueNowCents": due,
                "creditCents": max(0, -subtotal), "nextInvoiceCents": self.tiers[tier].price_cents}

    def _proration(self, sub: Subscription, tier: str, at: int) -> list[ledger.Line]:
        if tier not in TIER_NAMES:
            raise NNOError(400, "VALIDATION_ERROR", "Unknown tier", {"field": "tier", "allowed": list(TIER_NAMES)})
        if sub.status == "canceled":
            raise NNOError(409, "SUBSCRIPTION_CANCELED", "The subscription has ended")
        if sub.status == "trialing":
            return []
        return ledger.proration_lines(self.tiers[sub.tier], self.tiers[tier], sub.current_period_start,
                                      sub.current_period_end, at)

    async def change_tier(self, platform_id: str, tier: str, actor: Actor, *,
                          proration_date: int | None = None) -> dict[str, Any]:
        """Quotas first (the Registry refuses a tier the platform has outgrown), then the prorated
        charge; the Registry's tier is put back if the provider refuses the change. With a
        preview's `proration_date` (in this period, not in the future) the proration is the
        previewed one, as Stripe recommends."""
        now = await self.now()
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id)
        at = now if proration_date is None else proration_date
        if not sub.current_period_start <= at <= now:
            raise NNOError(400, "VALIDATION_ERROR", "prorationDate must lie in the current period and not in "
                           "the future", {"field": "prorationDate", "min": sub.current_period_start, "max": now})
        self._proration(sub, tier, at)  # validates the tier and the status
        if sub.cancel_at_period_end:
            raise NNOError(409, "SUBSCRIPTION_CANCELING",
                           "The subscription ends at the period's end; it cannot change tier")
        if tier == sub.tier:
            return serialize_subscription(sub)
        old_tier = sub.tier
        try:
            await self.registry.update(platform_id, {"tier": tier})
        except RegistryUnavailable as exc:
            raise NNOError(503, "SERVICE_UNAVAILABLE", "The Registry cannot take the tier change now") from exc
        try:
            await self.provider.change_tier(sub.id, tier, at)
        except Exception:
            await self.registry.update(platform_id, {"tier": old_tier})
            raise
        effects = Effects()
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id, lock=True)
            lines = self._proration(sub, tier, at)
            sub.tier = tier
            sub.updated_at = now
            self._audit(s, platform_id, actor, "subscription.change_tier", {"from": old_tier, "to": tier})
            if self.provider.runs_ledger and lines:
                await self._invoice(s, sub, "subscription_update", lines, now, sub.current_period_end, now, effects)
            out = serialize_subscription(sub)
        await self._after(effects)
        return out

    async def set_payment_method(self, platform_id: str, fails: bool, actor: Actor) -> dict[str, Any]:
        """The local provider's card: a failing one declines every charge; a working one retries
        the open invoices at once (paying them restores a suspended platform)."""
        if not self.provider.runs_ledger:
            raise NNOError(409, "NOT_SUPPORTED", "Payment methods are managed in Stripe")
        effects = Effects()
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id, lock=True)
            customer = await s.get(Customer, sub.customer_id, with_for_update=True)
            assert customer is not None
            customer.payment_fails = fails
            self._audit(s, platform_id, actor, "payment_method.update", {"fails": fails})
            if not fails:
                now = await self._now_in(s)
                for inv in await self._open_invoices(s, platform_id):
                    await self._charge(s, sub, customer, inv, now, effects)
        await self._after(effects)
        return {"platformId": platform_id, "paymentMethod": {"fails": fails}}

    async def pay(self, platform_id: str, invoice_id: str, actor: Actor) -> dict[str, Any]:
        if not self.provider.runs_ledger:
            raise NNOError(409, "NOT_SUPPORTED", "Stripe collects invoices itself")
        effects = Effects()
        async with self.db.session() as s:
            sub = await self._require_sub(s, platform_id, lock=True)
            inv = await s.get(Invoice, invoice_id, with_for_update=True)
            if inv is None or inv.platform_id != platform_id:
                raise NNOError(404, "NOT_FOUND", "Invoice not found")
            if inv.status != "open":
                raise NNOError(409, "INVOICE_NOT_OPEN", f"The invoice is {inv.status}")
            customer = await s.get(Customer, sub.customer_id)
            assert customer is not None
            self._audit(s, platform_id, actor, "invoice.pay_requested", {"invoiceId": inv.id})
            await self._charge(s, sub, customer, inv, await self._now_in(s), effects)
            out = serialize_invoice(inv)
        await self._after(effects)
        if out["status"] != "paid":
            raise NNOError(402, "PAYMENT_FAILED", "The payment method was declined", {"invoiceId": invoice_id})
        return out

    # --- the local ledger ---------------------------------------------------------------------------

    async def _now_in(self, s: AsyncSession) -> int:
        if not self.provider.runs_ledger:
            return now_ms()
        row = await s.get(Clock, "local")
        return now_ms() + (row.offset_ms if row else 0)

    async def _open_invoices(self, s: AsyncSession, platform_id: str) -> list[Invoice]:
        return list((await s.execute(select(Invoice).where(Invoice.platform_id == platform_id,
                                                           Invoice.status == "open")
                                     .order_by(Invoice.created_at, Invoice.id).with_for_update())).scalars())

    async def _invoice(self, s: AsyncSession, sub: Subscription, reason: str, lines: list[ledger.Line],
                       start: int, end: int, now: int, effects: Effects) -> Invoice:
        customer = await s.get(Customer, sub.customer_id, with_for_update=True)
        assert customer is not None
        subtotal = sum(line.amount_cents for line in lines)
        due, credit, balance = ledger.apply_balance(subtotal, customer.balance_cents)
        customer.balance_cents = balance
        inv = Invoice(id=f"in_{new_id(14)}", platform_id=sub.platform_id, subscription_id=sub.id, reason=reason,
                      status="open", period_start=start, period_end=end, subtotal_cents=subtotal,
                      credit_applied_cents=credit, amount_due_cents=due, amount_paid_cents=0,
                      lines=[line.to_json() for line in lines], attempt_count=0, created_at=now)
        s.add(inv)
        await s.flush()
        self._audit(s, sub.platform_id, SYSTEM, "invoice.create",
                    {"invoiceId": inv.id, "reason": reason, "amountDueCents": due})
        await self._charge(s, sub, customer, inv, now, effects)
        return inv

    async def _charge(self, s: AsyncSession, sub: Subscription, customer: Customer, inv: Invoice, now: int,
                      effects: Effects) -> None:
        """One payment attempt on the local card; Stripe's invoice.paid / invoice.payment_failed."""
        if inv.amount_due_cents > 0:
            inv.attempt_count += 1
        if inv.amount_due_cents > 0 and customer.payment_fails:
            inv.next_attempt_at = now + int(self.settings.retry_hours * HOUR_MS)
            self._audit(s, sub.platform_id, SYSTEM, "invoice.payment_failed",
                        {"invoiceId": inv.id, "attempt": inv.attempt_count, "amountDueCents": inv.amount_due_cents})
            self.mark_past_due(s, sub, now)
            return
        inv.status = "paid"
        inv.amount_paid_cents = inv.amount_due_cents
        inv.paid_at = now
        inv.next_attempt_at = None
        self._audit(s, sub.platform_id, SYSTEM, "invoice.paid", {"invoiceId": inv.id, "amountPaidCents":
                                                                  inv.amount_paid_cents})
        await s.flush()
        await self.settle_if_paid_up(s, sub, now, effects)

    def mark_past_due(self, s: AsyncSession, sub: Subscription, now: int) -> None:
        if sub.status in ("active", "trialing"):
            sub.status = "past_due"
            sub.past_due_since = now
            sub.updated_at = now
            self._audit(s, sub.platform_id, SYSTEM, "subscription.past_due", {"since": now})

    async def settle_if_paid_up(self, s: AsyncSession, sub: Subscription, now: int, effects: Effects) -> None:
        """No open invoice left: past_due → active, and a platform Billing suspended is restored."""
        if sub.status != "past_due":
            return
        left = await s.scalar(select(func.count()).select_from(Invoice).where(
            Invoice.platform_id == sub.platform_id, Invoice.status == "open"))
        if left and self.provider.runs_ledger:
            return
        sub.status = "active"
        sub.past_due_since = None
        sub.updated_at = now
        self._audit(s, sub.platform_id, SYSTEM, "subscription.reactivated", {})
        if sub.suspended_by_billing:
            sub.suspended_by_billing = False
            sub.registry_pending = "restore"
            effects.lifecycle.append((sub.platform_id, "restore"))
            self._audit(s, sub.platform_id, SYSTEM, "platform.restore_requested", {"reason": REASONS["restore"]})

    async def _cycle(self, s: AsyncSession, sub: Subscription, now: int, effects: Effects) -> None:
        """End every period of `sub` that is over by `now` (the clock may have jumped several)."""
        for _ in range(36):
            if sub.status == "canceled" or sub.current_period_end > now:
                return
            start, end = sub.current_period_start, sub.current_period_end
            was_trial = sub.status == "trialing"
            tier = self.tiers[sub.tier]
            usage = {m: q for (m, _), q in (await self._period_usage(s, sub.platform_id, start, end)).items()}
            lines = [] if was_trial else ledger.overage_lines(tier, usage, self.prices)
            if sub.cancel_at_period_end:
                sub.status = "canceled"
                sub.canceled_at = end
                sub.updated_at = now
                self._audit(s, sub.platform_id, SYSTEM, "subscription.ended", {"at": end})
                sub.registry_pending = "period_end"
                effects.lifecycle.append((sub.platform_id, "period_end"))
                if lines:
                    await self._invoice(s, sub, "subscription_cycle", lines, start, end, now, effects)
                return
            if was_trial:
                sub.status = "active"
                self._audit(s, sub.platform_id, SYSTEM, "subscription.trial_ended", {"at": end})
            sub.current_period_start = end
            sub.current_period_end = ledger.add_month(end, ledger.anchor_day(sub.created_at if not sub.trial_end
                                                                             else sub.trial_end))
            sub.updated_at = now
            lines.insert(0, ledger.Line(f"{sub.tier} plan", tier.price_cents, "subscription"))
            await self._invoice(s, sub, "subscription_cycle", lines, start, sub.current_period_end, now, effects)

    # --- the scheduler's work ---------------------------------------------------------------------

    async def run_due(self) -> dict[str, int]:
        """Period ends and payment retries (local), dunning, owed Registry calls, threshold alerts."""
        now = await self.now()
        counts = {"periods": 0, "retries": 0, "suspended": 0, "registry": 0, "alerts": 0}
        # Alerts first: they read the period that is still open, before a period end closes it.
        counts["alerts"] = await self._alerts(now)
        if self.provider.runs_ledger:
            async with self.db.session() as s:
                due = list((await s.execute(select(Subscription.platform_id).where(
                    Subscription.status != "canceled", Subscription.current_period_end <= now))).scalars())
            for platform_id in due:
                effects = Effects()
                async with self.db.session() as s:
                    sub = await self._require_sub(s, platform_id, lock=True)
                    await self._cycle(s, sub, now, effects)
                await self._after(effects)
                counts["periods"] += 1
            async with self.db.session() as s:
                retry = list((await s.execute(select(Invoice.id, Invoice.platform_id).where(
                    Invoice.status == "open", Invoice.next_attempt_at <= now))).all())
            for invoice_id, platform_id in retry:
                effects = Effects()
                async with self.db.session() as s:
                    sub = await self._require_sub(s, platform_id, lock=True)
                    inv = await s.get(Invoice, invoice_id, with_for_update=True)
                    customer = await s.get(Customer, sub.customer_id)
                    if inv is not None and inv.status == "open" and customer is not None:
                        await self._charge(s, sub, customer, inv, now, effects)
                await self._after(effects)
                counts["retries"] += 1
        counts["suspended"] = await self._dunning(now)
        counts["registry"] = await self._retry_registry()
        return counts

    async def _dunning(self, now: int) -> int:
        cutoff = now - int(self.settings.grace_days * DAY_MS)
        async with self.db.session() as s:
            overdue = list((await s.execute(select(Subscription.platform_id).where(
                Subscription.status == "past_due", Subscription.past_due_since <= cutoff,
                Subscription.suspended_by_billing.is_(False)))).scalars())
        for platform_id in overdue:
            effects = Effects()
            async with self.db.session() as s:
                sub = await self._require_sub(s, platform_id, lock=True)
                if sub.status != "past_due" or sub.suspended_by_billing:
                    continue
                sub.suspended_by_billing = True
                sub.registry_pending = "suspend"
                sub.updated_at = now
                self._audit(s, platform_id, SYSTEM, "platform.suspend_requested",
                            {"reason": REASONS["suspend"], "pastDueSince": sub.past_due_since})
                effects.lifecycle.append((platform_id, "suspend"))
            await self._after(effects)
        return len(overdue)

    async def _retry_registry(self) -> int:
        async with self.db.session() as s:
            owed = list((await s.execute(select(Subscription.platform_id, Subscription.registry_pending).where(
                Subscription.registry_pending.is_not(None)))).all())
        await self._after(Effects(lifecycle=[(p, a) for p, a in owed if a]))
        return len(owed)

    async def _after(self, effects: Effects) -> None:
        for platform_id, action in effects.lifecycle:
            await self._lifecycle(platform_id, action)
        for to, subject, body in effects.mails:
            await send_mail(self.ctx.settings, to, subject, body)

    async def _lifecycle(self, platform_id: str, action: str) -> None:
        """Ask the Registry for `action`; clear the owed call when it is done or cannot apply."""
        try:
            result = await self.registry.lifecycle(platform_id, action, REASONS[action])
            outcome = result.get("status")
        except RegistryUnavailable as exc:
            log.warning("billing_lifecycle_deferred", platform_id=platform_id, action=action, error=str(exc))
            return
        except NNOError as exc:
            # An illegal pair (e.g. an operator already deleted the platform) will not become legal.
            outcome = f"refused {exc.code}"
            log.warning("billing_lifecycle_refused", platform_id=platform_id, action=action, code=exc.code)
        async with self.db.session() as s:
            sub = await self._sub(s, platform_id, lock=True)
            if sub is not None and sub.registry_pending == action:
                sub.registry_pending = None
            self._audit(s, platform_id, SYSTEM, f"platform.{action}", {"registry": outcome})

    async def _alerts(self, now: int) -> int:
        """Mail the platform's billing contact once per period when a metric reaches 80% and 100%
        of what its tier includes. Subscriptions are read in batches of ALERT_BATCH by platform id;
        each batch's usage is one aggregate query over its open periods."""
        sent = 0
        after = ""
        while True:
            effects = Effects()
            async with self.db.session() as s:
                subs = list((await s.execute(
                    select(Subscription).where(Subscription.status != "canceled", Subscription.platform_id > after)
                    .order_by(Subscription.platform_id).limit(ALERT_BATCH))).scalars())
                if not subs:
                    return sent
                after = subs[-1].platform_id
                sent += await self._alert_batch(s, subs, now, effects)
            await self._after(effects)

    async def _alert_batch(self, s: AsyncSession, subs: list[Subscription], now: int, effects: Effects) -> int:
        period = {sub.platform_id: sub.current_period_start for sub in subs}
        by_sub = {sub.platform_id: sub for sub in subs}
        stmt = (select(UsageEvent.platform_id, UsageEvent.metric, UsageEvent.tenant_id, func.sum(UsageEvent.quantity),
                       func.max(UsageEvent.quantity))
                .join(Subscription, Subscription.platform_id == UsageEvent.platform_id)
                .where(Subscription.platform_id.in_(list(period)),
                       UsageEvent.occurred_at >= Subscription.current_period_start, UsageEvent.occurred_at <= now)
                .group_by(UsageEvent.platform_id, UsageEvent.metric, UsageEvent.tenant_id))
        usage = fold_usage((await s.execute(stmt)).tuples())
        due: list[tuple[Subscription, str, int, int, int]] = []  # (sub, metric, threshold, used, included)
        for platform_id, metrics in usage.items():
            sub = by_sub[platform_id]
            for (metric, _), qty in metrics.items():
                included = self.tiers[sub.tier].included.get(metric, 0)
                due += [(sub, metric, t, qty, included) for t in ALERT_THRESHOLDS
                        if included and qty * 100 >= included * t]
        if not due:
            return 0
        pids = sorted({d[0].platform_id for d in due})
        known = {tuple(r) for r in (await s.execute(
            select(UsageAlert.platform_id, UsageAlert.metric, UsageAlert.period_start, UsageAlert.threshold)
            .where(UsageAlert.platform_id.in_(pids),
                   UsageAlert.period_start >= min(period[p] for p in pids)))).all()}
        due = [d for d in due if (d[0].platform_id, d[1], period[d[0].platform_id], d[2]) not in known]
        emails = dict((await s.execute(select(Customer.id, Customer.email).where(
            Customer.id.in_(sorted({d[0].customer_id for d in due}))))).tuples().all()) if due else {}
        sent = 0
        for sub, metric, threshold, qty, included in due:
            stmt = dialect_insert(s, UsageAlert).values(
                platform_id=sub.platform_id, metric=metric, period_start=sub.current_period_start,
                threshold=threshold, sent_at=now).on_conflict_do_nothing()
            if not (await s.execute(stmt)).rowcount:  # type: ignore[attr-defined]
                continue  # another process sent it a moment ago
            self._audit(s, sub.platform_id, SYSTEM, "usage.alert",
                        {"metric": metric, "threshold": threshold, "used": qty, "included": included})
            email = emails.get(sub.customer_id)
            if email:
                effects.mails.append((email, f"NNO: {metric} at {threshold}% of your {sub.tier} plan",
                                      f"Platform {sub.platform_id} has used {qty} of the {included} {metric} its "
                                      f"{sub.tier} plan includes this period. Usage beyond it is billed as overage; "
                                      f"upgrade with `nno billing change-tier`."))
            sent += 1
        return sent

    async def snapshot_day(self, s: AsyncSession, day_start: int) -> int:
        """`usage_snapshots`: one day's events summed (gauges: their peak) per platform, tenant, metric."""
        day = ledger.day_key(day_start)
        await s.execute(delete(UsageDaily).where(UsageDaily.day == day))
        stmt = (select(UsageEvent.platform_id, UsageEvent.tenant_id, UsageEvent.metric,
                       func.sum(UsageEvent.quantity), func.max(UsageEvent.quantity))
                .where(UsageEvent.occurred_at >= day_start, UsageEvent.occurred_at < day_start + DAY_MS)
                .group_by(UsageEvent.platform_id, UsageEvent.tenant_id, UsageEvent.metric))
        rows = [{"platform_id": p, "tenant_id": t, "metric": m, "day": day,
                 "quantity": int(mx if m in GAUGE_METRICS else total)}
                for p, t, m, total, mx in (await s.execute(stmt)).all()]
        if rows:
            await s.execute(dialect_insert(s, UsageDaily), rows)
        return len(rows)

    async def rollup_month(self, s: AsyncSession, month: str) -> int:
        """A month from its daily snapshots: counts summed, gauges at their highest day."""
        await s.execute(delete(UsageMonthly).where(UsageMonthly.month == month))
        per_day = (await s.execute(select(UsageDaily.platform_id, UsageDaily.metric, UsageDaily.day,
                                          func.sum(UsageDaily.quantity))
                                   .where(UsageDaily.day.like(f"{month}-%"))
                                   .group_by(UsageDaily.platform_id, UsageDaily.metric, UsageDaily.day))).all()
        totals: dict[tuple[str, str], int] = {}
        for platform_id, metric, _day, qty in per_day:
            key = (platform_id, metric)
            totals[key] = max(totals.get(key, 0), int(qty)) if metric in GAUGE_METRICS else \
                totals.get(key, 0) + int(qty)
        rows = [{"platform_id": p, "metric": m, "month": month, "quantity": q} for (p, m), q in totals.items()]
        if rows:
            await s.execute(dialect_insert(s, UsageMonthly), rows)
        return len(rows)

    # --- audit --------------------------------------------------------------------------------------

    def _audit(self, s: AsyncSession, platform_id: str | None, actor: Actor, action: str,
               details: dict[str, Any]) -> None:
        s.add(AuditEntry(id=new_id(16), platform_id=platform_id, actor_type=actor[0], actor_id=actor[1],
                         action=action, details=details, created_at=now_ms()))


async def billing_email(ctx: ServiceContext, owner_user_id: str | None) -> str | None:
    return await IamClient(ctx).user_email(owner_user_id) if owner_user_id else None
