"""The Stack Registry's tables (provisioning-stacks.md §7.2). Times are Unix ms, ids 10-char NanoIDs.

A template's `latest_version` is the greatest (SemVer precedence) of its `active` versions, kept in
the same transaction as every publish and deprecation, under the template row's lock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUSES = ("active", "deprecated")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StackTemplate(Base):
    __tablename__ = "stack_templates"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text)
    icon: Mapped[str | None] = mapped_column(String(64))
    domain: Mapped[str | None] = mapped_column(String(64))
    latest_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Seeded with NNO itself (the built-in catalogue) rather than published by an operator.
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("status IN ('active', 'deprecated')", name="status"),
        Index("ix_stack_templates_status_name", "status", "name"),
    )


class StackVersion(Base):
    """One published version: its definition never changes; only its status does."""

    __tablename__ = "stack_versions"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("stack_templates.id"))
    version: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    changelog: Mapped[str | None] = mapped_column(Text)
    published_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger)
    deprecated_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("status IN ('active', 'deprecated')", name="status"),
        UniqueConstraint("template_id", "version"),
    )
