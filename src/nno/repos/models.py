"""The CLI Service's tables: each platform's repository, and its builds (which are also the build
runner's queue, claimed under a lease like provisioning jobs)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class PlatformRepo(Base):
    __tablename__ = "platform_repos"

    platform_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    repo_full_name: Mapped[str] = mapped_column(String(200))
    default_branch: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200))
    plan_tier: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(8))
    onboarding_session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The branch head the service last queued a build for: a push is a head that differs from it.
    head_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Build(Base):
    __tablename__ = "builds"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(16))
    environment: Mapped[str] = mapped_column(String(8))
    commit_sha: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # queued | building | deployed | failed
    trigger: Mapped[str] = mapped_column(String(200))
    log: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[int] = mapped_column(BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_builds_claim", "status", "not_before"),
        Index("ix_builds_platform", "platform_id", "created_at", "id"),
    )
