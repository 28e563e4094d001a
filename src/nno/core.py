"""The NNO core: every service app, their bindings, the gateway and the edge router, composed into
one ASGI application for `nno serve` (embedded mode), or any subset of them (scaled mode).

A service package `nno.<pkg>` joins the core by providing `nno/<pkg>/app.py` with
`create_app(ctx: ServiceContext) -> FastAPI` and `MIGRATIONS_DIR: Path | None`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Callable
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
from nno.kernel.topology import IDENTITY_PATH, OK, UNREACHABLE, identity, identity_token_ok, probe_all
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
        self.portal: ASGIApp | None = None
        self.started = False
        self.remote_check: asyncio.Task[None] | None = None

    async def check_remote_services(self, timeout_s: float = 5.0) -> dict[str, str]:
        """Ask each service reached over HTTP who it is (`nno.kernel.topology.probe_service`), and say
        which do not answer as that service: unreachable (not started yet, a wrong URL), or something
        else answering (a gateway, another service, another install)."""
        results: dict[str, str] = {}
        for probe in await probe_all(self._http_bindings(), timeout_s):
            results[probe.service] = probe.verdict
            if probe.verdict == UNREACHABLE:
                log.warning("remote_service_unreachable", service=probe.service, url=probe.url, error=probe.detail)
            elif probe.verdict != OK:
                log.error("remote_service_misconfigured", service=probe.service, url=probe.url,
                          message=probe.message)
        if results:
            log.info("remote_services_checked", **results)
        return results

    async def watch_remote_services(self, first_delay_s: float = 1.0, max_delay_s: float = 30.0) -> None:
        """Until every remote service answers: ask again the ones that did not, backing off. A
        service started after this process is noticed (`remote_service_ready`)."""
        results = await self.check_remote_services()
        delay = first_delay_s
        while self.started and (waiting := [b for b in self._http_bindings() if results.get(b.name) == UNREACHABLE]):
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
            for probe in await probe_all(waiting):
                results[probe.service] = probe.verdict
                if probe.verdict == OK:
                    log.info("remote_service_ready", service=probe.service, url=probe.url)
                elif probe.verdict != UNREACHABLE:
                    log.error("remote_service_misconfigured", service=probe.service, url=probe.url,
                              message=probe.message)

    def _http_bindings(self) -> list[HTTPBinding]:
        return [b for n in SERVICE_NAMES if isinstance(b := self.bindings.get(n), HTTPBinding)]

    async def _build_component(self, name: str, module: ModuleType) -> tuple[ServiceContext, ASGIApp, ASGIApp]:
        """The component's context, the app served over HTTP, and the app its neighbours in this
        process call (the same app; only calls from outside the process need the internal token)."""
        # A component may place its own database (the edge keeps the local cloud's state there).
        make_db = getattr(module, "create_database", None)
        db = make_db(self.settings) if make_db is not None else Database.for_service(self.settings, name)
        migrations: Path | None = getattr(module, "MIGRATIONS_DIR", None)
        if migrations is not None:
            await upgrade(db, migrations)
        ctx = ServiceContext(name=name, settings=self.settings, db=db, bindings=self.bindings, kv=self.kv)
        app = module.create_app(ctx)
        secret = self.settings.signing_secret if self.standalone else None
        served = wrap_service(app, standalone_secret=secret)
        return ctx, served, wrap_service(app) if secret is not None else served

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
            ctx, app, neighbour = await self._build_component(name, module)
            self.contexts[name] = ctx
            self.apps[name] = app
            self.bindings.add(ASGIBinding(name, neighbour, s.upstream_timeout_s))
        if self.with_edge:
            edge_module = _import_optional(EDGE_MODULE)
            if edge_module is not None:
                ctx, self.edge, _ = await self._build_component("edge", edge_module)
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
        remote = {n: s.service_url(n) for n in SERVICE_NAMES if s.service_url(n) and n not in self.apps}
        log.info("core_started", services=sorted(self.apps), remote=remote, gateway=self.with_gateway,
                 edge=self.edge is not None)
        if remote:  # in the background: a service may come up after this process
            self.remote_check = asyncio.get_running_loop().create_task(self.watch_remote_services())

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        if self.remote_check is not None:
            self.remote_check.cancel()
            # Bounded: a probe stuck in a resolver thread must not hold the shutdown up.
            await asyncio.wait([self.remote_check], timeout=5)
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
    def asgi(self) -> CoreApp:
        return CoreApp(self)

    def context(self, name: str) -> ServiceContext:
        return self.contexts[name]


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class CoreApp:
    """Top-level ASGI app: lifespan drives the core; Host picks the edge router or the gateway."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._edge_suffix = "." + core.settings.base_domain.lower()
        # Run once the core has started, before the server says it accepts requests.
        self.on_started: list[Callable[[], None]] = []

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

    def _mounted(self, scope: Scope) -> tuple[ASGIApp, Scope] | None:
        """A process serving several services (`--service a --service b`, no gateway) serves each
        under its name: `NNO_A_URL=http://host:port/a`. One service alone is served at the root."""
        apps = self.core.apps
        if self.core.gateway is not None or len(apps) < 2:
            return None
        path: str = scope.get("path", "")
        name, _, rest = path[1:].partition("/")
        app = apps.get(name)
        if app is None:
            return None
        prefix = "/" + name
        scope = dict(scope, path="/" + rest)
        raw: bytes | None = scope.get("raw_path")
        if raw is not None and raw.startswith(prefix.encode()):
            scope["raw_path"] = raw[len(prefix):] or b"/"
        return app, scope

    async def _identity(self, scope: Scope, send: Send) -> bool:
        """`GET [/{service}]/_nno/identity`, for a caller holding the internal token: what this process
        serves, so a process given a URL can tell a service from a gateway or another service."""
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "GET":
            return False
        token = next((v for k, v in scope.get("headers", ()) if k == b"x-nno-internal-token"), None)
        if not identity_token_ok(self.core.settings, token):
            return False
        core, prefix = self.core, path[: -len(IDENTITY_PATH)]
        if not prefix and core.gateway is None and len(core.apps) > 1:
            body = identity([], gateway=False, mounted=list(core.apps))
        elif not prefix:
            body = identity(list(core.apps), gateway=core.gateway is not None)
        elif core.gateway is None and len(core.apps) > 1 and prefix[1:] in core.apps:
            body = identity([prefix[1:]], gateway=False)
        else:
            return False
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        if path.endswith(IDENTITY_PATH) and await self._identity(scope, send):
            return
        if self.core.gateway is None:
            if path == "/health" and scope["type"] == "http":
                # A process of services alone answers its health check itself: the services answer
                # only callers holding the internal token, and a container's health check holds none.
                started = self.core.started
                await _plain(send, 200 if started else 503, b"ok" if started else b"starting")
                return
            mounted = self._mounted(scope)
            if mounted is not None:
                await mounted[0](mounted[1], receive, send)
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
                for hook in self.on_started:
                    hook()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.core.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
