"""The local cloud's state: the one class both the `local` provider (inside the provisioning job
worker, possibly another process) and the edge router use, each with its own `Database` on the
same URL (`{data_dir}/cloud/cloud.db`, or the PostgreSQL schema `edge`).

Sharing state through the database rather than through internal HTTP endpoints means there is no
management API on the edge at all, so nothing a public, Host-routed request could reach by forging
headers, and it works the same when the provisioning worker runs in another process.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from nno.edge import names
from nno.edge.d1 import D1Missing, PostgresD1, create_sqlite_file, d1_schema, remove_sqlite_file
from nno.edge.models import (
    D1Database,
    DNSRecord,
    KVEntry,
    KVNamespace,
    PagesProject,
    R2Bucket,
    R2Object,
    Worker,
    WorkerSecret,
)
from nno.edge.pages import publish_site, site_inputs
from nno.edge.secretbox import SecretBox, SecretsKeyError
from nno.edge.secrets_key import Keyring, ensure_key, has_sealed, reseal
from nno.edge.storage import DatabaseBucketClient, R2BucketClient
from nno.kernel.aio import loop_lock
from nno.kernel.clock import now_ms
from nno.kernel.config import Settings
from nno.kernel.db import Database, sqlite_url
from nno.kernel.migrations import upgrade

log = structlog.get_logger("nno.edge.cloud")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
STATE_SCHEMA = "edge"


class CloudError(Exception):
    """A local-cloud operation that cannot succeed as asked (`retryable` when another try may)."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        self.retryable = retryable
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class CloudResource:
    type: str  # d1 | r2 | kv | worker | pages | dns | secret
    name: str
    provider_id: str
    created: bool
    metadata: dict[str, Any] = field(default_factory=dict)


def cloud_root(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "cloud"


def state_database(settings: Settings) -> Database:
    """The local cloud's state database under the current configuration."""
    if settings.database_url:
        return Database(settings.database_url, schema=STATE_SCHEMA)
    return Database(sqlite_url(cloud_root(settings) / "cloud.db"))


# In-process listeners (the edge router) told when a Worker, Pages project or hostname changes, keyed
# by the state database they watch. An edge in another process notices within its route-cache TTL,
# on the next request's version check, or at its periodic sweep.
_listeners: dict[str, set[Callable[[str], None]]] = {}
_migrated: set[str] = set()


def _db_key(db: Database) -> str:
    return f"{db.url}#{db.schema or ''}"


async def migrate_state(db: Database) -> None:
    """Bring the state database to head once per process; PostgreSQL serialises concurrent
    processes (the edge and `nno worker`) with an advisory lock."""
    key = _db_key(db)
    if key in _migrated:
        return
    async with loop_lock("edge-state-migrations"):
        if key in _migrated:
            return
        if db.is_sqlite:
            await upgrade(db, MIGRATIONS_DIR)
        else:
            async with db.engine.connect() as lock_conn:
                await lock_conn.execute(text("SELECT pg_advisory_lock(hashtext('nno-edge-migrations'))"))
                try:
                    await upgrade(db, MIGRATIONS_DIR)
                finally:
                    await lock_conn.execute(text("SELECT pg_advisory_unlock(hashtext('nno-edge-migrations'))"))
                    await lock_conn.commit()
        _migrated.add(key)


def _sqlite_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


class LocalCloud:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.root = cloud_root(settings)
        self.db = db if db is not None else state_database(settings)
        self._owns_db = db is None
        self.keyring = Keyring(settings)
        self._legacy_checked = False
        self.base_domain = settings.base_domain.lower().strip(".")
        # Scaled: D1s are PostgreSQL schemas next to the state, not files under the data directory.
        self.d1s = PostgresD1(self.db) if not self.db.is_sqlite else None
        self._pages_rendered: dict[str, str] = {}  # Pages project -> deployment rendered on this host
        self._pages_locks: dict[str, asyncio.Lock] = {}

    # ---- lifecycle -------------------------------------------------------------------------
    async def ready(self) -> None:
        await migrate_state(self.db)
        if not self._legacy_checked:
            self._legacy_checked = True
            try:  # say it at start, not only when a Worker fails to start
                self.keyring.box()
            except SecretsKeyError as exc:
                log.error("secrets_key_unusable", error=str(exc))
            # Scaled, hosts share PostgreSQL and Redis only: keys kept in files here are this host's.
            unset = [name for name, value in (("NNO_SECRETS_KEY", self.keyring.configured),
                                              ("NNO_SHELL_SECRET", self.settings.shell_secret)) if not value]
            if self.d1s is not None and unset:
                log.warning("keys_in_data_dir", unset=unset, data_dir=str(self.settings.data_dir),
                            message="processes on other hosts cannot read this host's key files: give every "
                                    f"process the same {' and '.join(unset)} (docs/reliability.md)")
            await self._reseal_legacy()

    async def _reseal_legacy(self) -> None:
        """Re-seal, with the kept key, the secrets an earlier version sealed with a key derived from
        AUTH_API_KEY or the data directory's path; those that no derivation opens are reported."""
        try:
            if not await has_sealed(self.db, legacy=True):
                return
            box = await self.sealing_box()
            report = await reseal(self.db, box, legacy_only=True)
        except SecretsKeyError as exc:
            log.error("secrets_key_unusable", error=str(exc))
            return
        if report.resealed:
            log.info("secrets_resealed_with_kept_key", count=report.resealed, key=box.current.hex_id)
        for message in report.unreadable:
            log.error("secret_unreadable", error=message)

    async def sealing_box(self) -> SecretBox:
        """The box that seals new values: the kept key, made now if there is none yet."""
        box, _ = await ensure_key(self.db, self.keyring)
        return box

    async def close(self) -> None:
        if self._owns_db:
            await self.db.dispose()

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(name)` when a Worker, Pages project or hostname changes in this process."""
        listeners = _listeners.setdefault(_db_key(self.db), set())
        listeners.add(callback)
        return lambda: listeners.discard(callback)

    def _notify(self, name: str) -> None:
        for callback in list(_listeners.get(_db_key(self.db), ())):
            try:
                callback(name)
            except Exception:  # a listener's failure must not fail the provider call
                log.exception("cloud_listener_failed", name=name)

    # ---- paths -----------------------------------------------------------------------------
    def d1_path(self, name: str) -> Path:
        return self.root / "d1" / f"{name}.sqlite"

    def r2_path(self, name: str) -> Path:
        return self.root / "r2" / name

    def pages_path(self, name: str) -> Path:
        return self.root / "pages" / name

    @staticmethod
    def _check_name(kind: str, name: str) -> None:
        if not names.is_resource_name(name):
            raise CloudError(f"invalid {kind} name {name!r}: use [a-z0-9-], at most 63 characters", status=400)

    # ---- D1 --------------------------------------------------------------------------------
    def _d1_ref(self, row: D1Database, created: bool) -> CloudResource:
        where = {"schema": d1_schema(row.name)} if self.d1s is not None else {"path": str(self.d1_path(row.name))}
        return CloudResource("d1", row.name, row.id, created, where)

    async def _ensure_d1_storage(self, name: str) -> None:
        if self.d1s is not None:
            await self.d1s.ensure(name)
        else:  # a missing file (first time, or gone) is given back, empty
            path = self.d1_path(name)
            if not path.exists():
                await asyncio.to_thread(create_sqlite_file, path)

    async def ensure_d1(self, name: str) -> CloudResource:
        self._check_name("D1", name)
        await self.ready()
        async with self.db.session() as s:
            row = await s.get(D1Database, name)
        await self._ensure_d1_storage(name)
        if row is not None:
            return self._d1_ref(row, False)
        row = D1Database(name=name, id=str(uuid.uuid4()), platform_id=names.platform_of(name), created_at=now_ms())
        try:
            async with self.db.session() as s:
                s.add(row)
        except IntegrityError:  # created concurrently: found
            async with self.db.session() as s:
                existing = await s.get(D1Database, name)
            if existing is None:
                raise
            return self._d1_ref(existing, False)
        return self._d1_ref(row, True)

    async def delete_d1(self, name: str) -> None:
        self._check_name("D1", name)
        await self.ready()
        async with self.db.session() as s:
            await s.execute(delete(D1Database).where(D1Database.name == name))
        if self.d1s is not None:
            await self.d1s.delete(name)
        else:
            await asyncio.to_thread(remove_sqlite_file, self.d1_path(name))
            for snapshot in self._snapshot_dir().glob(f"{name}.*.sqlite"):
                await asyncio.to_thread(snapshot.unlink, True)

    async def d1_database(self, name: str) -> Database:
        """A handle on the D1 for a Worker (or its migrations): the SQLite file, or on PostgreSQL a
        connection as the D1's own role, confined to its schema. The caller disposes it."""
        self._check_name("D1", name)
        if self.d1s is not None:
            try:
                return await self.d1s.database_for(name)
            except D1Missing as exc:
                raise CloudError(f"D1 {name} does not exist", status=404) from exc
        return Database(sqlite_url(self.d1_path(name)))

    async def d1_exists(self, name: str) -> bool:
        if self.d1s is not None:
            return await self.d1s.exists(name)
        return self.d1_path(name).exists()

    # A stack upgrade snapshots its shared D1 before migrations and restores it on rollback. SQLite's
    # online backup copies a consistent database while Workers hold it open, both ways; PostgreSQL
    # copies the schema in one transaction.
    def _snapshot_dir(self) -> Path:
        return self.root / "d1" / ".snapshots"

    def _snapshot_path(self, name: str, snapshot: str) -> Path:
        if not snapshot.isalnum():
            raise CloudError(f"invalid snapshot id {snapshot!r}", status=400)
        return self._snapshot_dir() / f"{name}.{snapshot}.sqlite"

    async def snapshot_d1(self, name: str) -> str:
        """A copy of the D1 to restore later; "" when the D1 does not exist (nothing to keep)."""
        self._check_name("D1", name)
        snapshot = uuid.uuid4().hex
        if self.d1s is not None:
            return snapshot if await self.d1s.snapshot(name, snapshot) else ""
        if not self.d1_path(name).exists():
            return ""
        await asyncio.to_thread(_sqlite_copy, self.d1_path(name), self._snapshot_path(name, snapshot))
        return snapshot

    async def restore_d1(self, name: str, snapshot: str) -> None:
        self._check_name("D1", name)
        source = self._snapshot_path(name, snapshot)  # checks the id on both backends
        if self.d1s is not None:
            if not await self.d1s.has_snapshot(name, snapshot):
                raise CloudError(f"D1 snapshot {snapshot} of {name} is gone")
            await self.d1s.restore(name, snapshot)
            return
        if not source.exists():
            raise CloudError(f"D1 snapshot {snapshot} of {name} is gone")
        await asyncio.to_thread(_sqlite_copy, source, self.d1_path(name))

    async def drop_d1_snapshot(self, name: str, snapshot: str) -> None:
        self._check_name("D1", name)
        path = self._snapshot_path(name, snapshot)
        if self.d1s is not None:
            await self.d1s.drop_snapshot(name, snapshot)
        else:
            path.unlink(missing_ok=True)

    # ---- R2 --------------------------------------------------------------------------------
    def _r2_ref(self, name: str, created: bool) -> CloudResource:
        where = {"table": "r2_objects"} if self.d1s is not None else {"path": str(self.r2_path(name))}
        return CloudResource("r2", name, name, created, where)

    def r2_bucket(self, name: str) -> R2BucketClient | DatabaseBucketClient:
        """A client of the bucket's objects: files on this host, or rows every host shares (scaled)."""
        if self.d1s is not None:
            return DatabaseBucketClient(self.db, name)
        return R2BucketClient(self.r2_path(name))

    async def r2_size(self, name: str) -> int:
        """Bytes the bucket holds, on either backend."""
        return await self.r2_bucket(name).size()

    async def ensure_r2(self, name: str) -> CloudResource:
        self._check_name("R2 bucket", name)
        await self.ready()
        if self.d1s is None:
            self.r2_path(name).mkdir(parents=True, exist_ok=True)
        async with self.db.session() as s:
            row = await s.get(R2Bucket, name)
        if row is not None:
            return self._r2_ref(name, False)
        try:
            async with self.db.session() as s:
                s.add(R2Bucket(name=name, platform_id=names.platform_of(name), created_at=now_ms()))
        except IntegrityError:
            return self._r2_ref(name, False)
        return self._r2_ref(name, True)

    async def delete_r2(self, name: str) -> None:
        self._check_name("R2 bucket", name)
        await self.ready()
        async with self.db.session() as s:
            await s.execute(delete(R2Object).where(R2Object.bucket == name))
            await s.execute(delete(R2Bucket).where(R2Bucket.name == name))
        await asyncio.to_thread(shutil.rmtree, self.r2_path(name), True)

    # ---- KV --------------------------------------------------------------------------------
    async def ensure_kv(self, name: str) -> CloudResource:
        self._check_name("KV namespace", name)
        await self.ready()
        async with self.db.session() as s:
            row = await s.get(KVNamespace, name)
        if row is not None:
            return CloudResource("kv", name, row.id, False)
        row = KVNamespace(name=name, id=str(uuid.uuid4()), platform_id=names.platform_of(name), created_at=now_ms())
        try:
            async with self.db.session() as s:
                s.add(row)
        except IntegrityError:
            async with self.db.session() as s:
                existing = await s.get(KVNamespace, name)
            if existing is None:
                raise
            return CloudResource("kv", name, existing.id, False)
        return CloudResource("kv", name, row.id, True)

    async def delete_kv(self, name: str) -> None:
        self._check_name("KV namespace", name)
        await self.ready()
        async with self.db.session() as s:
            await s.execute(delete(KVEntry).where(KVEntry.namespace == name))
            await s.execute(delete(KVNamespace).where(KVNamespace.name == name))

    # ---- Workers ---------------------------------------------------------------------------
    async def _resolve_bindings(self, bindings: dict[str, str]) -> dict[str, dict[str, str]]:
        """{binding: resource name} -> {binding: {type, name}}; every resource must exist."""
        resolved: dict[str, dict[str, str]] = {}
        async with self.db.session() as s:
            for binding, resource in sorted(bindings.items()):
                if not names.BINDING_NAME_RE.match(binding):
                    raise CloudError(f"invalid binding name {binding!r}", status=400)
                for kind, model in (("d1", D1Database), ("kv", KVNamespace), ("r2", R2Bucket)):
                    if await s.get(model, resource) is not None:
                        resolved[binding] = {"type": kind, "name": resource}
                        break
                else:
                    raise CloudError(
                        f"binding {binding} refers to {resource!r}, which is no D1 database, KV namespace or R2 bucket",
                        status=400,
                    )
        return resolved

    async def ensure_worker(
        self, name: str, *, kind: str, platform_id: str, bindings: dict[str, str]
    ) -> CloudResource:
        from nno.edge.workers import prepare_worker  # the worker host imports this module

        self._check_name("Worker", name)
        await self.ready()
        resolved = await self._resolve_bindings(bindings)
        # Fails clearly (not retryable) when the code for `kind` is not installed; migrates the
        # auth Worker's D1 before any request can reach it.
        await prepare_worker(self, kind, resolved)
        encoded = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
        now = now_ms()
        async with self.db.session() as s:
            row = await s.get(Worker, name)
            if row is not None:
                if row.platform_id != platform_id:
                    raise CloudError(f"Worker {name} belongs to another platform", status=409)
                if row.kind == kind and row.bindings == encoded:
                    return self._worker_ref(row, False)
                row.kind, row.bindings, row.version, row.updated_at = kind, encoded, str(uuid.uuid4()), now
                ref = self._worker_ref(row, False)
            else:
                row = Worker(
                    name=name, id=str(uuid.uuid4()), kind=kind, platform_id=platform_id, bindings=encoded,
                    version=str(uuid.uuid4()), created_at=now, updated_at=now,
                )
                s.add(row)
                ref = self._worker_ref(row, True)
        self._notify(name)  # new or redeployed: an edge drops what it cached for this name
        return ref

    @staticmethod
    def _worker_ref(row: Worker, created: bool) -> CloudResource:
        return CloudResource(
            "worker", row.name, row.id, created, {"kind": row.kind, "bindings": json.loads(row.bindings),
                                                  "version": row.version}
        )

    async def get_worker(self, name: str) -> Worker | None:
        await self.ready()
        async with self.db.session() as s:
            return await s.get(Worker, name)

    async def delete_worker(self, name: str) -> None:
        self._check_name("Worker", name)
        await self.ready()
        async with self.db.session() as s:
            await s.execute(delete(WorkerSecret).where(WorkerSecret.worker == name))
            await s.execute(delete(Worker).where(Worker.name == name))
        self._notify(name)

    # ---- secrets ---------------------------------------------------------------------------
    async def put_secret(self, worker: str, key: str, value: str) -> CloudResource:
        self._check_name("Worker", worker)
        if not names.SECRET_KEY_RE.match(key):
            raise CloudError(f"invalid secret name {key!r}: use [A-Za-z0-9_]", status=400)
        await self.ready()
        sealed = (await self.sealing_box()).seal(f"{worker}/{key}", value)
        now = now_ms()
        async with self.db.session() as s:
            owner = await s.get(Worker, worker)
            if owner is None:
                raise CloudError(f"Worker {worker} does not exist; deploy it before setting its secrets", status=404)
            row = await s.get(WorkerSecret, (worker, key))
            created = row is None
            if row is None:
                s.add(WorkerSecret(worker=worker, key=key, ciphertext=sealed, created_at=now, updated_at=now))
            else:
                row.ciphertext, row.updated_at = sealed, now
            owner.version = str(uuid.uuid4())  # the Worker's env changed
        self._notify(worker)
        return CloudResource("secret", f"{worker}:{key}", f"{worker}:{key}", created, {"worker": worker, "key": key})

    async def delete_secret(self, worker: str, key: str) -> None:
        await self.ready()
        async with self.db.session() as s:
            existing = await s.get(WorkerSecret, (worker, key))
            if existing is None:
                return
            await s.delete(existing)
            owner = await s.get(Worker, worker)
            if owner is not None:
                owner.version = str(uuid.uuid4())
        self._notify(worker)

    async def secret_status(self, worker: str) -> list[dict[str, Any]]:
        """Which secrets a Worker has, never their values."""
        await self.ready()
        async with self.db.session() as s:
            rows = (await s.scalars(select(WorkerSecret).where(WorkerSecret.worker == worker)
                                    .order_by(WorkerSecret.key))).all()
        return [{"name": r.key, "createdAt": r.created_at, "updatedAt": r.updated_at} for r in rows]

    async def worker_secrets(self, worker: str) -> dict[str, str]:
        """Decrypted values, for the worker host only (the Worker's own env). A value that cannot be
        opened raises `SecretsKeyError`, whose message names the fix."""
        async with self.db.session() as s:
            rows = (await s.scalars(select(WorkerSecret).where(WorkerSecret.worker == worker))).all()
        box = self.keyring.box()
        return {r.key: box.open(f"{worker}/{r.key}", r.ciphertext) for r in rows}

    # ---- Pages -----------------------------------------------------------------------------
    async def ensure_pages(self, name: str, *, platform_id: str, site: dict[str, Any]) -> CloudResource:
        self._check_name("Pages project", name)
        await self.ready()
        directory = self.pages_path(name)
        inputs = site_inputs(site)
        published = await asyncio.to_thread(publish_site, directory, site)
        now = now_ms()
        async with self.db.session() as s:
            row = await s.get(PagesProject, name)
            created = row is None
            if row is None:
                row = PagesProject(name=name, id=str(uuid.uuid4()), platform_id=platform_id,
                                   deployment_id=str(uuid.uuid4()), created_at=now, updated_at=now, site=inputs)
                s.add(row)
            elif row.platform_id != platform_id:
                raise CloudError(f"Pages project {name} belongs to another platform", status=409)
            elif published or row.site != inputs:
                row.deployment_id, row.updated_at, row.site = str(uuid.uuid4()), now, inputs
        self._pages_rendered[name] = row.deployment_id
        self._notify(name)
        return CloudResource("pages", name, row.id, created, {"path": str(directory),
                                                             "deploymentId": row.deployment_id})

    async def pages_directory(self, project: PagesProject) -> Path:
        """The project's files on this host, at its current deployment. The row holds the site's
        inputs; each host's data directory only a rendering of them, made again here when this host
        has not rendered this deployment (another process or host deployed it, or a new host)."""
        directory = self.pages_path(project.name)
        if project.site is None or self._pages_rendered.get(project.name) == project.deployment_id:
            return directory
        lock = self._pages_locks.setdefault(project.name, asyncio.Lock())
        async with lock:
            if self._pages_rendered.get(project.name) != project.deployment_id:
                await asyncio.to_thread(publish_site, directory, json.loads(project.site))
                self._pages_rendered[project.name] = project.deployment_id
        return directory

    async def delete_pages(self, name: str) -> None:
        self._check_name("Pages project", name)
        await self.ready()
        async with self.db.session() as s:
            await s.execute(delete(PagesProject).where(PagesProject.name == name))
        await asyncio.to_thread(shutil.rmtree, self.pages_path(name), True)
        self._pages_rendered.pop(name, None)
        self._notify(name)

    # ---- DNS -------------------------------------------------------------------------------
    def _check_hostname(self, hostname: str) -> str:
        host = hostname.lower().rstrip(".")
        if not names.is_hostname(host):
            raise CloudError(f"invalid hostname {hostname!r}", status=400)
        if not host.endswith("." + self.base_domain):
            raise CloudError(
                f"hostname {hostname!r} is outside the local cloud's domain {self.base_domain} (NNO_BASE_DOMAIN)",
                status=400,
            )
        return host

    async def ensure_dns(self, hostname: str, *, target: str, platform_id: str) -> CloudResource:
        host = self._check_hostname(hostname)
        self._check_name("DNS target", target)
        await self.ready()
        now = now_ms()
        async with self.db.session() as s:
            row = await s.get(DNSRecord, host)
            created = row is None
            if row is None:
                row = DNSRecord(hostname=host, id=str(uuid.uuid4()), target=target, platform_id=platform_id,
                                created_at=now, updated_at=now)
                s.add(row)
            elif row.platform_id != platform_id:
                raise CloudError(f"hostname {host} belongs to another platform", status=409)
            elif row.target != target:
                row.target, row.updated_at = target, now
        self._notify(host)
        return CloudResource("dns", host, row.id, created, {"target": target})

    async def delete_dns(self, hostname: str) -> None:
        host = hostname.lower().rstrip(".")
        await self.ready()
        async with self.db.session() as s:
            await s.execute(delete(DNSRecord).where(DNSRecord.hostname == host))
        self._notify(host)

    async def lookup_host(self, host: str) -> DNSRecord | None:
        async with self.db.session() as s:
            return await s.get(DNSRecord, host)

    # ---- inventory -------------------------------------------------------------------------
    async def list_platform_resources(self, platform_id: str) -> list[CloudResource]:
        await self.ready()
        out: list[CloudResource] = []
        async with self.db.session() as s:
            for d1 in (await s.scalars(select(D1Database).where(D1Database.platform_id == platform_id))).all():
                out.append(self._d1_ref(d1, False))
            for bucket in (await s.scalars(select(R2Bucket).where(R2Bucket.platform_id == platform_id))).all():
                out.append(self._r2_ref(bucket.name, False))
            for ns in (await s.scalars(select(KVNamespace).where(KVNamespace.platform_id == platform_id))).all():
                out.append(CloudResource("kv", ns.name, ns.id, False))
            workers = (await s.scalars(select(Worker).where(Worker.platform_id == platform_id))).all()
            for worker in workers:
                out.append(self._worker_ref(worker, False))
            if workers:
                secrets = (await s.scalars(select(WorkerSecret).where(
                    WorkerSecret.worker.in_([w.name for w in workers])))).all()
                for secret in secrets:
                    address = f"{secret.worker}:{secret.key}"
                    out.append(CloudResource("secret", address, address, False,
                                             {"worker": secret.worker, "key": secret.key}))
            for project in (await s.scalars(select(PagesProject).where(PagesProject.platform_id == platform_id))).all():
                out.append(CloudResource("pages", project.name, project.id, False,
                                         {"path": str(self.pages_path(project.name))}))
            for record in (await s.scalars(select(DNSRecord).where(DNSRecord.platform_id == platform_id))).all():
                out.append(CloudResource("dns", record.hostname, record.id, False, {"target": record.target}))
        # Files (or D1 schemas) the rows point at but that a crash left without a row still belong
        # to the platform.
        prefix = f"{platform_id}-"
        known = {(r.type, r.name) for r in out}
        if self.d1s is not None:
            for name, schema in await self.d1s.orphans(platform_id, {n for t, n in known if t == "d1"}):
                out.append(CloudResource("d1", name, schema, False, {"schema": schema, "orphan": True}))
        file_kinds = [("r2", "r2", ""), ("pages", "pages", "")]
        if self.d1s is None:
            file_kinds.insert(0, ("d1", "d1", ".sqlite"))
        for kind, sub, suffix in file_kinds:
            directory = self.root / sub
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if not entry.name.startswith(prefix) or not entry.name.endswith(suffix):
                    continue
                name = entry.name[: len(entry.name) - len(suffix)] if suffix else entry.name
                if (kind, name) not in known:
                    out.append(CloudResource(kind, name, str(entry), False, {"path": str(entry), "orphan": True}))
        return out
