"""The Registry's tables (registry.md §5). Times are Unix ms, ids 10-char NanoIDs.

Every list the API serves pages by `(created_at, id)` under an equality prefix, and each has an
index with exactly that shape, so a page is one index range scan whatever the table size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PLATFORM_STATUSES = ("pending", "provisioning", "active", "suspended", "pending_cancellation", "cancelled", "deleted")
TIERS = ("starter", "growth", "scale")
PLATFORM_CLASSES = ("platform", "user_project")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Platform(Base):
    __tablename__ = "platforms"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    status: Mapped[str] = mapped_column(String(24), default="pending")
    tier: Mapped[str] = mapped_column(String(16), default="starter")
    platform_class: Mapped[str] = mapped_column("class", String(16), default="platform")
    cf_account_id: Mapped[str | None] = mapped_column(String(64))
    repo_name: Mapped[str | None] = mapped_column(String(200))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(100))
    owner_user_id: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    cancellation_reason: Mapped[str | None] = mapped_column(Text)
    suspended_at: Mapped[int | None] = mapped_column(BigInteger)
    suspension_reason: Mapped[str | None] = mapped_column(Text)
    trial_ends_at: Mapped[int | None] = mapped_column(BigInteger)
    # The console shell's icon (`nno.kernel.icons`): an https URL or an uploaded image's data URL.
    icon: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint(_in("status", PLATFORM_STATUSES), name="status"),
        CheckConstraint(_in("tier", TIERS), name="tier"),
        CheckConstraint(_in('"class"', PLATFORM_CLASSES), name="class"),
        Index("ix_platforms_created_at_id", "created_at", "id"),
        Index("ix_platforms_status_created_at_id", "status", "created_at", "id"),
        Index("ix_platforms_owner_user_id_created_at_id", "owner_user_id", "created_at", "id"),
    )


class PlatformStatusCount(Base):
    """How many platforms are in each status, kept in the same transaction as every create and
    transition, so the unfiltered list's `total` is a constant-time read instead of a full count."""

    __tablename__ = "platform_status_counts"
    status: Mapped[str] = mapped_column(String(24), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Entity(Base):
    """A tenant (`parent_id` NULL) or a sub-tenant (one level below a tenant)."""

    __tablename__ = "entities"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("entities.id"))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16), default="active")
    org_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("platform_id", "slug"),
        CheckConstraint(_in("type", ("tenant", "sub_tenant")), name="type"),
        CheckConstraint(_in("status", ("active", "suspended", "deleted")), name="status"),
        # Partial indexes shaped exactly like the two list queries, so a page (first or deep) is an
        # ordered range scan on both engines, however many tenants a platform has.
        Index("ix_entities_live_tenants", "platform_id", "created_at", "id",
              sqlite_where=text("parent_id IS NULL AND deleted_at IS NULL"),
              postgresql_where=text("parent_id IS NULL AND deleted_at IS NULL")),
        Index("ix_entities_live_children", "parent_id", "created_at", "id",
              sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL")),
    )


class Stack(Base):
    """A stack instance of one platform; `default` is the reserved id of the one made at creation."""

    __tablename__ = "stacks"
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("entities.id"))
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    template_id: Mapped[str | None] = mapped_column(String(100))
    # The Stack Registry version the stack runs (Path A), set by Provisioning on activation and upgrade.
    template_version: Mapped[str | None] = mapped_column(String(64))
    repo_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint(_in("status", ("pending", "provisioning", "active", "failed", "deactivated")),
                        name="status"),
        Index("ix_stacks_platform_id_created_at_id", "platform_id", "created_at", "id"),
        Index("ix_stacks_tenant_id", "tenant_id"),
    )


class Resource(Base):
    """A provisioned resource; `name` follows the naming rule and embeds the platform id."""

    __tablename__ = "resources"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    stack_id: Mapped[str] = mapped_column(String(10))
    entity_id: Mapped[str | None] = mapped_column(ForeignKey("entities.id"))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(63))
    cf_resource_id: Mapped[str | None] = mapped_column(String(500))
    environment: Mapped[str] = mapped_column(String(8), default="prod")
    status: Mapped[str] = mapped_column(String(16), default="active")
    feature_id: Mapped[str | None] = mapped_column(String(100))
    provision_job_id: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("type", "name"),
        ForeignKeyConstraint(["platform_id", "stack_id"], ["stacks.platform_id", "stacks.id"]),
        CheckConstraint(_in("type", ("worker", "pages", "d1", "r2", "kv", "queue")), name="type"),
        CheckConstraint(_in("environment", ("dev", "stg", "prod")), name="environment"),
        CheckConstraint(_in("status", ("provisioning", "active", "failed", "deleting", "deleted")),
                        name="status"),
        Index("ix_resources_platform_id_created_at_id", "platform_id", "created_at", "id"),
    )


class Secret(Base):
    """Secret status only; values never reach the Registry."""

    __tablename__ = "secrets"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"))
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str | None] = mapped_column(String(128))
    set_by: Mapped[str | None] = mapped_column(String(64))
    last_set_at: Mapped[int | None] = mapped_column(BigInteger)
    last_rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("resource_id", "name"),
        CheckConstraint(_in("status", ("missing", "set", "rotating", "error")), name="status"),
    )


class DnsRecord(Base):
    __tablename__ = "dns_records"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    stack_id: Mapped[str] = mapped_column(String(10))
    resource_id: Mapped[str | None] = mapped_column(ForeignKey("resources.id"))
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    type: Mapped[str] = mapped_column(String(8))
    environment: Mapped[str] = mapped_column(String(8), default="prod")
    target: Mapped[str | None] = mapped_column(String(500))
    cf_custom_hostname_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(["platform_id", "stack_id"], ["stacks.platform_id", "stacks.id"]),
        CheckConstraint(_in("type", ("app", "svc")), name="type"),
        CheckConstraint(_in("environment", ("dev", "stg", "prod")), name="environment"),
        CheckConstraint(_in("status", ("pending", "active", "failed", "deleted")), name="status"),
        Index("ix_dns_records_platform_id_created_at_id", "platform_id", "created_at", "id"),
    )


class FeatureActivation(Base):
    """The active feature set per entity; one row per (entity, feature, environment), re-used on
    re-activation so history stays in the audit log rather than in duplicate rows."""

    __tablename__ = "feature_activations"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    entity_id: Mapped[str] = mapped_column(ForeignKey("entities.id"))
    stack_id: Mapped[str | None] = mapped_column(String(10))
    feature_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(8))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    activated_by: Mapped[str | None] = mapped_column(String(64))
    activated_at: Mapped[int | None] = mapped_column(BigInteger)
    deactivated_at: Mapped[int | None] = mapped_column(BigInteger)
    provision_job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("entity_id", "feature_id", "environment"),
        CheckConstraint(_in("environment", ("dev", "stg", "prod")), name="environment"),
        CheckConstraint(_in("status", ("pending", "active", "deactivating", "inactive", "failed")),
                        name="status"),
        Index("ix_feature_activations_platform_id_created_at_id", "platform_id", "created_at", "id"),
    )


class BuildState(Base):
    """Repo and build state per platform and environment, written by the CLI Service."""

    __tablename__ = "platform_build_state"
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"), primary_key=True)
    environment: Mapped[str] = mapped_column(String(8), primary_key=True)
    repo_full_name: Mapped[str | None] = mapped_column(String(200))
    default_branch: Mapped[str | None] = mapped_column(String(100))
    pages_project_name: Mapped[str | None] = mapped_column(String(63))
    last_commit_sha: Mapped[str | None] = mapped_column(String(64))
    last_build_id: Mapped[str | None] = mapped_column(String(100))
    last_build_status: Mapped[str | None] = mapped_column(String(16))
    last_build_at: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint(_in("environment", ("dev", "stg", "prod")), name="environment"),
        CheckConstraint("last_build_status IS NULL OR " + _in(
            "last_build_status", ("queued", "building", "success", "failure")), name="last_build_status"),
    )


class AuditLog(Base):
    """Append-only (triggers refuse UPDATE and DELETE, see the initial migration)."""

    __tablename__ = "audit_log"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str | None] = mapped_column(String(10))
    entity_id: Mapped[str | None] = mapped_column(String(10))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(253))
    request_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    meta: Mapped[Any] = mapped_column("metadata", JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_audit_log_platform_id_created_at_id", "platform_id", "created_at", "id"),)


class LifecycleEvent(Base):
    __tablename__ = "platform_lifecycle_events"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    from_status: Mapped[str] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_platform_lifecycle_events_platform_id_created_at_id", "platform_id", "created_at", "id"),
    )


class OnboardingSession(Base):
    __tablename__ = "onboarding_sessions"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    platform_id: Mapped[str | None] = mapped_column(ForeignKey("platforms.id"))
    user_id: Mapped[str] = mapped_column(String(64))
    platform_name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(63))
    tier: Mapped[str] = mapped_column(String(16))
    stack_template_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    provision_job_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint(_in("status", ("pending", "in_progress", "completed", "failed")), name="status"),
        Index("ix_onboarding_sessions_platform_id", "platform_id"),
        Index("ix_onboarding_sessions_user_id", "user_id"),
    )
