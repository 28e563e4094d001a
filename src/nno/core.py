"""The NNO core: every service app, their bindings, the gateway and the edge router, composed into
one ASGI application for `nno serve` (embedded mode), or any subset of them (scaled mode).

A service package `nno.<pkg>` joins the core by providing `nno/<pkg>/app.py` with
`create_app(ctx: ServiceContext) -> FastAPI` and `MIGRATIONS_DIR: Path | None`.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from nno.kernel.bindings import ASGIBinding, Bindings, HTTPBinding, UpstreamError
from nno.kernel.config import SERVICE_NAMES, Settings
from nno.kernel.db import Database
from nno.kernel.errors import envelope_bytes
from nno.kernel.kv import KeyValueStore, MemoryKV, RedisKV, redis_client
from nno.kernel.migrations import upgrade
from nno.kernel.service import ServiceContext, wrap_service

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
        # Services named explicitly (`nno serve --service X`) are served here even when the shared
        # environment also gives their own NNO_X_URL (one env file for every process).
        self.explicit = services is not None
        self.with_gateway = with_gateway
        self.with_edge = with_edge
        self.standalone = standalone
        self.kv: KeyValueStore = MemoryKV()
        self.bindings = Bindings()
        self.contexts: dict[str, ServiceContext] = {}
        self.apps: dict[str, ASGIApp] = {}
        self.gateway: ASGIApp | None = None
        self.edge: ASGIApp | None = None
        self.started = False
        self.remote_check: asyncio.Task[dict[str, str]] | None = None

    async def check_remote_services(self, timeout_s: float = 5.0) -> dict[str, str]:
        """Ask each service reached over HTTP for its API description, and say which do not answer
        as a service: unreachable (not started yet, a wrong URL), refusing, or a gateway's address
        (its paths carry the public `/api/v1` prefix) instead of the service's own."""
        results: dict[str, str] = {}
        for name in SERVICE_NAMES:
            binding = self.bindings.get(name)
            if not isinstance(binding, HTTPBinding):
                continue
            url = binding.base_url
            try:
                resp = await asyncio.wait_for(binding.request("GET", "/openapi.json"), timeout_s)
            except (UpstreamError, TimeoutError) as exc:
                results[name] = "unreachable"
                log.warning("remote_service_unreachable", service=name, url=url, error=str(exc) or "timeout")
                continue
            body = resp.json() if resp.status == 200 else None
            paths = body.get("paths", {}) if isinstance(body, dict) else {}
            if resp.status != 200:
                results[name] = f"answered {resp.status}"
                log.warning("remote_service_refused", service=name, url=url, status=resp.status)
            elif any(str(p).startswith("/api/v1/") for p in paths):
                results[name] = "a gateway"
                log.warning("remote_service_is_a_gateway", service=name, url=url,
                            hint=f"NNO_{name.upper()}_URL must be the address of `nno serve --service {name}`")
            else:
                results[name] = "ok"
        if results:
            log.info("remote_services_checked", **results)
        return results

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
            # Back-off while Redis is down stays well inside the status TTL, so a recovered Redis is
            # noticed (and re-published to) long before stale entries would have expired anyway.
            self.kv = RedisKV(redis_client(s.redis_url), s.redis_prefix,
                              backoff_max_s=min(5.0, max(s.status_cache_ttl_s / 4, 0.25)))
        for name in SERVICE_NAMES:
            url = s.service_url(name)
            if name not in self.wanted or (url and not self.explicit):
                if url:
                    self.bindings.add(HTTPBinding(name, url, s.signing_secret, s.upstream_timeout_s))
                continue
            if url:
                log.info("own_service_url_ignored", service=name, url=url,
                         reason="this process serves the service itself (--service)")
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
        for ctx in self.contexts.values():
            for hook in ctx.startup_hooks:
                await hook()
        self.started = True
        remote = {n: s.service_url(n) for n in SERVICE_NAMES if s.service_url(n) and n not in self.apps}
        log.info("core_started", services=sorted(self.apps), remote=remote, gateway=self.with_gateway,
                 edge=self.edge is not None)
        if remote:  # in the background: a service may come up after this process
            self.remote_check = asyncio.get_running_loop().create_task(self.check_remote_services())

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        if self.remote_check is not None:
            self.remote_check.cancel()
            await asyncio.gather(self.remote_check, return_exceptions=True)
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
