"""What a Worker sees of its KV and R2 bindings: small clients over the local cloud's KV table and
its buckets, with the operations Workers use (get, put, delete, list). A bucket is a directory under
the data directory (embedded), or rows of the state database's `r2_objects` (scaled: every host
sees the same objects without a shared file system)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from nno.edge.models import KVEntry, R2Object
from nno.kernel.clock import now_ms
from nno.kernel.db import Database

MAX_OBJECT_KEY = 1024


class KVNamespaceClient:
    def __init__(self, db: Database, namespace: str) -> None:
        self.db = db
        self.namespace = namespace

    async def get(self, key: str) -> bytes | None:
        async with self.db.session() as s:
            row = await s.get(KVEntry, (self.namespace, key))
            if row is None:
                return None
            if row.expires_at is not None and row.expires_at <= now_ms():
                await s.delete(row)
                return None
            return row.value

    async def put(self, key: str, value: bytes | str, *, ttl_s: float | None = None) -> None:
        data = value.encode() if isinstance(value, str) else value
        expires = now_ms() + int(ttl_s * 1000) if ttl_s is not None else None
        async with self.db.session() as s:
            row = await s.get(KVEntry, (self.namespace, key))
            if row is None:
                s.add(KVEntry(namespace=self.namespace, key=key, value=data, expires_at=expires))
            else:
                row.value, row.expires_at = data, expires

    async def delete(self, key: str) -> None:
        async with self.db.session() as s:
            await s.execute(delete(KVEntry).where(KVEntry.namespace == self.namespace, KVEntry.key == key))

    async def list(self, prefix: str = "", limit: int = 1000) -> list[str]:
        now = now_ms()
        async with self.db.session() as s:
            rows = await s.scalars(
                select(KVEntry.key)
                .where(KVEntry.namespace == self.namespace, KVEntry.key.startswith(prefix, autoescape=True),
                       (KVEntry.expires_at.is_(None)) | (KVEntry.expires_at > now))
                .order_by(KVEntry.key)
                .limit(limit)
            )
            return list(rows.all())


def _encoded_key(key: str) -> str:
    """The key as a file name; both kinds of bucket take the same keys."""
    if not key or len(key) > MAX_OBJECT_KEY:
        raise ValueError("object keys are 1 to 1024 characters")
    encoded = quote(key, safe="")
    if encoded.startswith("."):  # never ".", "..", or a hidden temp-file name
        encoded = "%2E" + encoded[1:]
    if len(encoded) > 250:
        raise ValueError("object key too long for the local bucket")
    return encoded


class R2BucketClient:
    """Objects are files named by their percent-encoded key, so any key maps inside the bucket."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / _encoded_key(key)

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)

        def write() -> None:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".upload-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def size(self) -> int:
        """What the bucket holds, in bytes (R2 storage, for Billing): its objects, not uploads in
        progress."""

        def total() -> int:
            size = 0
            try:
                with os.scandir(self.directory) as entries:
                    for entry in entries:
                        if not entry.name.startswith(".upload-") and entry.is_file(follow_symlinks=False):
                            size += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                return 0
            return size

        return await asyncio.to_thread(total)

    async def list(self, prefix: str = "") -> list[str]:
        if not self.directory.is_dir():
            return []
        keys = (unquote(p.name) for p in self.directory.iterdir() if not p.name.startswith(".upload-"))
        return sorted(k for k in keys if k.startswith(prefix))



class DatabaseBucketClient:
    """A bucket whose objects are rows of the state database (PostgreSQL)."""

    def __init__(self, db: Database, bucket: str) -> None:
        self.db = db
        self.bucket = bucket

    async def put(self, key: str, data: bytes) -> None:
        _encoded_key(key)
        stmt = pg_insert(R2Object).values(bucket=self.bucket, key=key, data=data, size=len(data), updated_at=now_ms())
        stmt = stmt.on_conflict_do_update(index_elements=[R2Object.bucket, R2Object.key], set_={
            "data": stmt.excluded.data, "size": stmt.excluded.size, "updated_at": stmt.excluded.updated_at})
        async with self.db.session() as s:
            await s.execute(stmt)

    async def get(self, key: str) -> bytes | None:
        _encoded_key(key)
        async with self.db.session() as s:
            data: bytes | None = await s.scalar(
                select(R2Object.data).where(R2Object.bucket == self.bucket, R2Object.key == key))
        return data

    async def delete(self, key: str) -> None:
        _encoded_key(key)
        async with self.db.session() as s:
            await s.execute(delete(R2Object).where(R2Object.bucket == self.bucket, R2Object.key == key))

    async def list(self, prefix: str = "") -> list[str]:
        async with self.db.session() as s:
            rows = await s.scalars(select(R2Object.key).where(
                R2Object.bucket == self.bucket, R2Object.key.startswith(prefix, autoescape=True),
            ).order_by(R2Object.key))
            return list(rows.all())

    async def size(self) -> int:
        async with self.db.session() as s:
            total = await s.scalar(select(func.coalesce(func.sum(R2Object.size), 0))
                                   .where(R2Object.bucket == self.bucket))
        return int(total or 0)


R2Bucket = R2BucketClient | DatabaseBucketClient
