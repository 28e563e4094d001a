"""Tables of the local cloud's state (the edge component's own database).

Every resource row carries the platform id its name embeds, so a platform's footprint is one
indexed query, and deprovisioning can prove it removed everything and only that.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class D1Database(Base):
    """A D1 database: a SQLite file under `cloud/d1/` (embedded), or a PostgreSQL schema (scaled)."""

    __tablename__ = "d1_databases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    platform_id: Mapped[str] = mapped_column(String(63), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class R2Bucket(Base):
    """An R2 bucket: a directory under `cloud/r2/` (embedded), or its `r2_objects` rows (scaled)."""

    __tablename__ = "r2_buckets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(63), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class R2Object(Base):
    """An object of a bucket, on a scaled installation (every host reads the same objects)."""

    __tablename__ = "r2_objects"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class KVNamespace(Base):
    __tablename__ = "kv_namespaces"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    platform_id: Mapped[str] = mapped_column(String(63), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class KVEntry(Base):
    __tablename__ = "kv_entries"
    namespace: Mapped[str] = mapped_column(
        String(64), ForeignKey("kv_namespaces.name", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)


class Worker(Base):
    """A deployed Worker: which code (`kind`) runs with which bindings. `version` changes on every
    deploy so an edge holding an older instance replaces it."""

    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(100))
    platform_id: Mapped[str] = mapped_column(String(63), index=True)
    bindings: Mapped[str] = mapped_column(Text)  # JSON {binding name: resource name}
    version: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class WorkerSecret(Base):
    """A Worker secret, sealed at rest with the install's kept secrets key (nno.edge.secretbox)."""

    __tablename__ = "worker_secrets"
    worker: Mapped[str] = mapped_column(
        String(63), ForeignKey("workers.name", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class PagesProject(Base):
    """A Pages project: a static site directory under `cloud/pages/`, rendered from `site` (its
    inputs, JSON): a host that lacks the current deployment renders it again from the row."""

    __tablename__ = "pages_projects"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    platform_id: Mapped[str] = mapped_column(String(63), index=True)
    deployment_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    site: Mapped[str | None] = mapped_column(Text, default=None)


class DNSRecord(Base):
    """A hostname the edge router resolves to a Worker or Pages project (by name)."""

    __tablename__ = "dns_records"
    hostname: Mapped[str] = mapped_column(String(253), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    target: Mapped[str] = mapped_column(String(63), index=True)
    platform_id: Mapped[str] = mapped_column(String(63), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

