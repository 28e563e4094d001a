"""The NNO core: every service app, their bindings, the gateway and the edge router, composed into
one ASGI application for `nno serve` (embedded mode), or any subset of them (scaled mode).

A service package `nno.<pkg>` joins the core by providing `nno/<pkg>/app.py` with
`create_app(ctx: ServiceContext) -> FastAPI` and `MIGRATIONS_DIR: Path | None`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from nno.kernel.bindings import ASGIBinding, Bindings, HTTPBinding
from nno.kernel.config import SERVICE_NAMES, Settings
from nno.kernel.db import Database
from nno.kernel.errors import envelope_bytes
from nno.kernel.kv import KeyValueStore, MemoryKV, RedisKV, redis_client
from nno.kernel.migrations import upgrade
from nno.kernel.service import ServiceContext, wrap_service
from nno.portal.paths import is_portal_path

log = structlog.get_logger("nno.core")

# Binding name -> module providing the service. Billing, stacks and the CLI service come later;
# until their module exists the gateway answers their prefixes with a 404 envelope.
SERVICE_MODULES: dict[str, str] = {
    "iam": "nno.iam.app",
    "registry": "nno.registry.app",
    "billing": "nno.billing.app",
    "provisioning": "nno.provisioning.app",
    "stacks": "nno.stacks.app",
    "cli": "nno.repos.app",
}
# Components that are not behind a gateway prefix but follow the same contract.
EDGE_MODULE = "nno.edge.app"


def _import_optional(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only "this service is not built yet" is tolerated; a broken import inside it is not.
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise


class Core:
    def __init__(
        self,
        settings: Settings,
        services: list[str] | None = None,
        *,
        with_gateway: bool = True,
        with_edge: bool = True,
        standalone: bool = False,
    ) -> None:
        self.settings = settings
        self.wanted = list(services) if services is not None else list(SERVICE_NAMES)
        self.with_gateway = with_gateway
        self.with_edge = with_edge
        self.standalone = standalone
        self.kv: KeyValueStore = MemoryKV()
        self.bindings = Bindings()
        self.contexts: dict[str, ServiceContext] = {}
        self.apps: dict[str, ASGIApp] = {}
        self.gateway: ASGIApp | None = None
        self.edge: ASGIApp | None = None
        self.portal: ASGIApp | None = None
        self.started = False

    async def _build_component(self, name: str, module: ModuleType) -> tuple[ServiceContext, ASGIApp]:
        # A component may place its own database (the edge keeps the local cloud's state there).
        make_db = getattr(module, "create_database", None)
        db = make_db(self.settings) if make_db is not None else Database.for_service(self.settings, name)
        migrations: Path | None = getattr(module, "MIGRATIONS_DIR", None)
        if migrations is not None:
            await upgrade(db, migrations)
        ctx = ServiceContext(name=name, settings=self.settings, db=db, bindings=self.bindings, kv=self.kv)
        app = module.create_app(ctx)
        secret = self.settings.signing_secret if self.standalone else None
        return ctx, wrap_service(app, standalone_secret=secret)

    async def start(self) -> None:
        if self.started:
            return
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        if s.redis_url:
            self.kv = RedisKV(redis_client(s.redis_url), s.redis_prefix)
        for name in SERVICE_NAMES:
            url = s.service_url(name)
            if name not in self.wanted or url:
                if url:
                    self.bindings.add(HTTPBinding(name, url, s.signing_secret, s.upstream_timeout_s))
                continue
            module = _import_optional(SERVICE_MODULES[name])
            if module is None:
                continue
            ctx, app = await self._build_component(name, module)
            self.contexts[name] = ctx
            self.apps[name] = app
            self.bindings.add(ASGIBinding(name, app, s.upstream_timeout_s))
        if self.with_edge:
            edge_module = _import_optional(EDGE_MODULE)
            if edge_module is not None:
                ctx, self.edge = await self._build_component("edge", edge_module)
                self.contexts["edge"] = ctx
                self.bindings.add(ASGIBinding("edge", self.edge, s.upstream_timeout_s))
        if self.with_gateway:
            from nno.gateway.app import create_gateway

            self.gateway = create_gateway(s, self.bindings, self.kv)
            from nno.portal.app import create_portal

            self.portal = create_portal(s, self.gateway)
        for ctx in self.contexts.values():
            for hook in ctx.startup_hooks:
                await hook()
        self.started = True
        log.info("core_started", services=sorted(self.apps), remote=[
            n for n in SERVICE_NAMES if s.service_url(n)], gateway=self.with_gateway, edge=self.edge is not None)

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        for ctx in reversed(list(self.contexts.values())):
            for hook in reversed(ctx.shutdown_hooks):
                try:
                    await hook()
                except Exception:  # keep shutting the rest down
                    log.exception("shutdown_hook_failed", service=ctx.name)
        await self.bindings.close()
        for ctx in self.contexts.values():
            await ctx.db.dispose()
        await self.kv.close()

    @property
    def asgi(self) -> ASGIApp:
        return CoreApp(self)

    def context(self, name: str) -> ServiceContext:
        return self.contexts[name]


class CoreApp:
    """Top-level ASGI app: lifespan drives the core; Host picks the edge router or the gateway."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._edge_suffix = "." + core.settings.base_domain.lower()

    def _target(self, scope: Scope) -> ASGIApp | None:
        core = self.core
        if core.edge is not None:
            for name, value in scope.get("headers", ()):
                if name == b"host":
                    host = value.decode("latin-1").lower().rsplit(":", 1)[0] if value else ""
                    if host.endswith(self._edge_suffix) or host == self._edge_suffix[1:]:
                        return core.edge
                    break
        if core.gateway is not None:
            if core.portal is not None and is_portal_path(scope.get("path", "")):
                return core.portal
            return core.gateway
        if len(core.apps) == 1:
            return next(iter(core.apps.values()))
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        target = self._target(scope)
        if target is None:
            body = envelope_bytes("SERVICE_UNAVAILABLE", "NNO core is not started")
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await target(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Any = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.core.start()
                except Exception as exc:
                    log.exception("core_start_failed")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.core.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
