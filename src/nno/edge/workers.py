"""The worker host: which Python code a Worker `kind` runs, the env it gets (its D1, KV and R2
bindings and its secrets), and the cache of live instances the edge router dispatches to.

Kinds:
- `auth`: the platform's own auth service, a real instance of IAM's
  `nno.iam.auth_app.create_auth_app(db, settings, platform_id=...)` on the Worker's D1 (binding
  `DB`), migrated with `AUTH_MIGRATIONS_DIR` when the Worker is deployed;
- any other kind: a feature package's backend, found in the `nno.features` entry-point group under
  that name, whose loaded object (or its module) provides `create_worker_app(env) -> ASGI app`;
- kinds registered in-process with `register_worker_kind` (embedders, tests).
Instances are built lazily on a host's first request, cached, and disposed when the Worker is
deleted or redeployed.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import structlog
from sqlalchemy import select
from starlette.types import ASGIApp

from nno.edge.cloud import CloudError, LocalCloud
from nno.edge.models import Worker
from nno.edge.storage import KVNamespaceClient, R2Bucket
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.migrations import upgrade
from nno.sdk.discovery import load_entry_point
from nno.sdk.env import ServiceResponse

log = structlog.get_logger("nno.edge.workers")

AUTH_KIND = "auth"
AUTH_MODULE = "nno.iam.auth_app"
FEATURE_ENTRY_POINTS = "nno.features"


ServiceCall = Callable[[str, str, str, dict[str, str], Any], Awaitable[ServiceResponse]]


@dataclass
class WorkerEnv:
    """A Worker's `env`: its bindings by name, and its secrets (decrypted for it alone)."""

    name: str
    kind: str
    platform_id: str
    settings: Settings
    d1: dict[str, Database] = field(default_factory=dict)
    kv: dict[str, KVNamespaceClient] = field(default_factory=dict)
    r2: dict[str, R2Bucket] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # Service bindings: call another Worker of the same platform by name (set by the WorkerHost).
    services: ServiceCall | None = None


WorkerFactory = Callable[[WorkerEnv], "ASGIApp | Awaitable[ASGIApp]"]
_registered: dict[str, WorkerFactory] = {}


def register_worker_kind(kind: str, factory: WorkerFactory) -> Callable[[], None]:
    """Make `kind` deployable in this process; returns a function that unregisters it."""
    _registered[kind] = factory

    def unregister() -> None:
        if _registered.get(kind) is factory:
            del _registered[kind]

    return unregister


def _auth_module() -> Any:
    try:
        return importlib.import_module(AUTH_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and AUTH_MODULE.startswith(exc.name):
            raise CloudError(
                "cannot deploy an auth Worker: IAM's per-platform auth app (nno.iam.auth_app.create_auth_app) "
                "is not available in this installation"
            ) from exc
        raise


def _auth_d1_binding(bindings: dict[str, dict[str, str]]) -> str:
    if bindings.get("DB", {}).get("type") == "d1":
        return bindings["DB"]["name"]
    d1 = [b["name"] for b in bindings.values() if b["type"] == "d1"]
    if len(d1) == 1:
        return d1[0]
    raise CloudError("the auth Worker needs exactly one D1 binding (named DB) for its users and sessions")


async def _auth_factory(env: WorkerEnv) -> ASGIApp:
    module = _auth_module()
    db = env.d1.get("DB") or next(iter(env.d1.values()))
    # The session cookie is the platform's (`.{platformId}.{base}`): its console shell and feature
    # hosts share it, no other platform's host sees it.
    domain = f".{env.platform_id}.{env.settings.base_domain.strip('.')}"
    app: ASGIApp = module.create_auth_app(db, env.settings, platform_id=env.platform_id, cookie_domain=domain)
    return app


def resolve_factory(kind: str) -> WorkerFactory:
    if kind in _registered:
        return _registered[kind]
    if kind == AUTH_KIND:
        _auth_module()
        return _auth_factory
    for ep in entry_points(group=FEATURE_ENTRY_POINTS):
        if ep.name != kind:
            continue
        installed = load_entry_point(ep)
        if installed.definition is not None:  # an SDK feature package (nno.sdk.FeatureDefinition)
            from nno.edge.features import feature_factory

            factory_: WorkerFactory = feature_factory(installed)
            return factory_
        target = ep.load()
        factory = getattr(target, "create_worker_app", None)
        if factory is None and inspect.ismodule(target) is False:
            factory = getattr(importlib.import_module(target.__module__), "create_worker_app", None)
        if callable(factory):
            return factory
        raise CloudError(f"feature {kind!r} has no backend Worker (no create_worker_app)")
    raise CloudError(f"no Worker code for kind {kind!r}: not 'auth' and no installed feature package by that name")


async def prepare_worker(cloud: LocalCloud, kind: str, bindings: dict[str, dict[str, str]]) -> None:
    """Deploy-time checks: the code exists; the auth Worker's D1 carries IAM's tables."""
    resolve_factory(kind)
    if kind == AUTH_KIND and kind not in _registered:
        d1_name = _auth_d1_binding(bindings)
        module = _auth_module()
        db = await cloud.d1_database(d1_name)
        try:
            await upgrade(db, module.AUTH_MIGRATIONS_DIR)
        except Exception as exc:
            raise CloudError(f"migrating the auth D1 {d1_name} failed: {exc}", retryable=True) from exc
        finally:
            await db.dispose()


@dataclass
class _Instance:
    version: str
    app: ASGIApp
    env: WorkerEnv
    stack: AsyncExitStack


class WorkerHost:
    """Live Worker instances by name, built on first use and replaced when the deploy changes. At
    most `NNO_WORKER_INSTANCES` are kept: the least recently used is disposed to make room, since
    each holds its D1 connections (on PostgreSQL, a process serving many platforms would otherwise
    exhaust the server's connections)."""

    meter: Any = None  # set by the edge app: counts what Workers do with their bindings, for Billing

    def __init__(self, cloud: LocalCloud, settings: Settings) -> None:
        self.cloud = cloud
        self.settings = settings
        self._instances: OrderedDict[str, _Instance] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._disposals: set[asyncio.Task[None]] = set()

    def live(self) -> dict[str, str]:
        """{worker name: deployed version} of the instances held in memory."""
        return {name: inst.version for name, inst in self._instances.items()}

    def invalidate(self, name: str) -> None:
        """Called (synchronously) when a Worker is deleted or redeployed; disposal runs soon after."""
        instance = self._instances.pop(name, None)
        if instance is not None:
            task = asyncio.get_running_loop().create_task(self._dispose(name, instance))
            self._disposals.add(task)
            task.add_done_callback(self._disposals.discard)

    async def drain(self) -> None:
        """Wait for disposals started by `invalidate`."""
        while self._disposals:
            await asyncio.gather(*list(self._disposals), return_exceptions=True)

    async def get(self, worker: Worker) -> ASGIApp:
        current = self._instances.get(worker.name)
        if current is not None and current.version == worker.version:
            self._instances.move_to_end(worker.name)
            return current.app
        lock = self._locks.setdefault(worker.name, asyncio.Lock())
        async with lock:
            current = self._instances.get(worker.name)
            if current is not None and current.version == worker.version:
                return current.app
            if current is not None:
                self._instances.pop(worker.name, None)
                await self._dispose(worker.name, current)
            instance = await self._build(worker)
            self._instances[worker.name] = instance
            while len(self._instances) > self.settings.worker_instances:
                self.invalidate(next(iter(self._instances)))  # requests in flight keep their connections
            return instance.app

    async def _build(self, worker: Worker) -> _Instance:
        factory = resolve_factory(worker.kind)
        env = WorkerEnv(name=worker.name, kind=worker.kind, platform_id=worker.platform_id, settings=self.settings)
        stack = AsyncExitStack()
        try:
            for binding, ref in json.loads(worker.bindings).items():
                if ref["type"] == "d1":  # each D1 handle is disposed with the instance, or at a failed build
                    env.d1[binding] = await self.cloud.d1_database(ref["name"])
                    stack.push_async_callback(env.d1[binding].dispose)
                elif ref["type"] == "kv":
                    env.kv[binding] = KVNamespaceClient(self.cloud.db, ref["name"])
                elif ref["type"] == "r2":
                    env.r2[binding] = self.cloud.r2_bucket(ref["name"])
            env.secrets = await self.cloud.worker_secrets(worker.name)
            env.services = self._service_call(worker.platform_id)
            if self.meter is not None:
                self.meter.instrument(env)
            made = factory(env)
            app: ASGIApp = await made if inspect.isawaitable(made) else made
            lifespan = getattr(getattr(app, "router", None), "lifespan_context", None)
            if lifespan is not None:
                await stack.enter_async_context(lifespan(app))
        except BaseException:
            await stack.aclose()
            raise
        log.info("edge_worker_loaded", worker=worker.name, kind=worker.kind, version=worker.version)
        return _Instance(worker.version, app, env, stack)

    def service_call(self, platform_id: str) -> ServiceCall:
        """The service binding a Pages Function of `platform_id` gets (its platform's Workers only)."""
        return self._service_call(platform_id)

    def _service_call(self, platform_id: str) -> ServiceCall:
        """A service binding for Workers of `platform_id`: dispatch in-process to another of its
        Workers by name (another platform's Workers are out of reach)."""

        async def call(name: str, method: str, path: str, headers: dict[str, str], body: Any) -> ServiceResponse:
            from nno.kernel.bindings import ASGIBinding, UpstreamError

            row = await self.cloud.get_worker(name)
            if row is None or row.platform_id != platform_id:
                return ServiceResponse(404, b'{"error":{"code":"NOT_FOUND","message":"no such Worker"}}')
            try:
                app = await self.get(row)
                resp = await ASGIBinding(name, app, self.settings.upstream_timeout_s).request(
                    method, path, json=body, headers=headers)
            except UpstreamError as exc:
                return ServiceResponse(exc.status, b'{"error":{"code":"UPSTREAM_ERROR","message":"unreachable"}}')
            return ServiceResponse(resp.status, resp.body, dict(resp.headers))

        return call

    async def _dispose(self, name: str, instance: _Instance) -> None:
        try:
            await instance.stack.aclose()
        except Exception:
            log.exception("worker_dispose_failed", worker=name)
        log.info("worker_disposed", worker=name, version=instance.version)

    async def sweep(self) -> list[str]:
        """Drop instances whose Worker was deleted or redeployed elsewhere (e.g. by `nno worker` in
        another process, whose in-process notification cannot reach this edge). Returns their names."""
        live = self.live()
        if not live:
            return []
        async with self.cloud.db.session() as s:
            rows = (await s.execute(select(Worker.name, Worker.version).where(Worker.name.in_(list(live))))).all()
        current = {name: version for name, version in rows}
        stale = [name for name, version in live.items() if current.get(name) != version]
        for name in stale:
            self.invalidate(name)
        await self.drain()
        return stale

    async def run_sweeper(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep()
            except Exception:  # the sweeper must outlive a failed round (e.g. a database blip)
                log.exception("worker_sweep_failed")

    async def close(self) -> None:
        await self.drain()
        instances, self._instances = self._instances, OrderedDict()
        for name, instance in instances.items():
            await self._dispose(name, instance)
