"""Billing's own tables. With the `local` provider they are the ledger itself (customers,
subscriptions, invoices, the payment method that can be made to fail, the advanceable clock); with
`stripe` they mirror Stripe. Times are Unix milliseconds; money is integer cents.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}

SUBSCRIPTION_STATUSES = ("active", "trialing", "past_due", "canceled")
INVOICE_STATUSES = ("open", "paid", "void")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # cus_... (the provider's id)
    platform_id: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    # Stripe's customer balance: negative is credit applied to the next invoice.
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # The local provider's payment method: `fails` makes every charge decline (a test card).
    payment_fails: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Subscription(Base):
    __tablename__ = "subscriptions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sub_...
    platform_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    current_period_start: Mapped[int] = mapped_column(BigInteger)
    current_period_end: Mapped[int] = mapped_column(BigInteger)
    trial_end: Mapped[int | None] = mapped_column(BigInteger)
    past_due_since: Mapped[int | None] = mapped_column(BigInteger)
    # Billing suspended the platform for non-payment (and so is the one to restore it).
    suspended_by_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    # Registry lifecycle calls still owed (the Registry was unreachable): retried by the scheduler.
    registry_pending: Mapped[str | None] = mapped_column(String(32))
    canceled_at: Mapped[int | None] = mapped_column(BigInteger)
    # The `created` time of the newest provider event applied, so an older one never overwrites it.
    provider_event_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_subscriptions_status_current_period_end", "status", "current_period_end"),)


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # in_...
    platform_id: Mapped[str] = mapped_column(String(64))
    subscription_id: Mapped[str] = mapped_column(String(64))
    # What raised it: `subscription_create`, `subscription_cycle`, `subscription_update` (proration).
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[int] = mapped_column(BigInteger)
    period_end: Mapped[int] = mapped_column(BigInteger)
    subtotal_cents: Mapped[int] = mapped_column(BigInteger)
    credit_applied_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_due_cents: Mapped[int] = mapped_column(BigInteger)
    amount_paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    paid_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_invoices_platform_id_created_at_id", "platform_id", "created_at", "id"),
        Index("ix_invoices_status_next_attempt_at", "status", "next_attempt_at"),
    )


class UsageEvent(Base):
    """One reported quantity. The event id makes ingest idempotent: a repeat is ignored."""

    __tablename__ = "usage_events"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64), default="")
    metric: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_usage_events_platform_id_occurred_at", "platform_id", "occurred_at"),
                      Index("ix_usage_events_occurred_at", "occurred_at"))


class UsageDaily(Base):
    """`usage_snapshots`: one day's usage per platform, tenant ('' for the platform itself) and metric."""

    __tablename__ = "usage_daily"
    platform_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD (UTC)
    quantity: Mapped[int] = mapped_column(BigInteger)


class UsageMonthly(Base):
    __tablename__ = "usage_monthly"
    platform_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    quantity: Mapped[int] = mapped_column(BigInteger)


class UsageAlert(Base):
    """A threshold alert sent once per platform, metric, billing period and threshold."""

    __tablename__ = "usage_alerts"
    platform_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    period_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    threshold: Mapped[int] = mapped_column(Integer, primary_key=True)
    sent_at: Mapped[int] = mapped_column(BigInteger)


class ProviderEvent(Base):
    """A webhook event applied (the provider's event id): a second delivery is acknowledged only."""

    __tablename__ = "provider_events"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    __tablename__ = "billing_audit"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    platform_id: Mapped[str | None] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_billing_audit_platform_id_created_at", "platform_id", "created_at"),)


class Clock(Base):
    """The local provider's test clock: how far billing time runs ahead of the wall clock."""

    __tablename__ = "clock"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    offset_ms: Mapped[int] = mapped_column(BigInteger)


class SchedulerLease(Base):
    """Which process runs the scheduler now; taken over when its lease expires."""

    __tablename__ = "scheduler_leases"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[int] = mapped_column(BigInteger)


class SchedulerRun(Base):
    """One row per job and slot (a day, a month) run: the primary key makes each run happen once."""

    __tablename__ = "scheduler_runs"
    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    slot: Mapped[str] = mapped_column(String(16), primary_key=True)
    ran_at: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(Text)
