"""The edge router: serves the local cloud by Host under `NNO_BASE_DOMAIN`.

Resolution follows the documented DNS patterns (registry.md §4, provisioning-stacks.md §5.3): the
host is looked up as a DNS row (`auth.svc.default.{pid}.nno.localhost`,
`console.app.default.{pid}.nno.localhost`, ...); the short aliases ARCHITECTURE.md names map onto
them: `{pid}.{base}` is the platform's console, `{name}.{pid}.{base}` its default-stack service or
app `{name}`. The row's target is a Worker (dispatched to its live ASGI instance) or a Pages project
(its static site). Client-supplied `X-Nno-*` headers never reach a Worker.

Platform hosts get the gateway's protections, from the gateway's own code: the rate limit
(`NNO_RATE_LIMIT`, keyed per client, target and route; host aliases of one Worker share a budget)
and, for Workers, the body limit (`NNO_MAX_BODY_BYTES`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.edge import names
from nno.edge.cloud import LocalCloud
from nno.edge.functions import PagesFunctions
from nno.edge.metering import WorkerMeter
from nno.edge.models import DNSRecord, PagesProject, Worker
from nno.edge.pages import INDEX, read_site, render_site, static_file
from nno.edge.workers import WorkerHost
from nno.gateway.body_limit import BodyLimit, BodyTooLarge, CountedBody, Refusal
from nno.kernel.bindings import Bindings
from nno.kernel.context import request_id_var
from nno.kernel.errors import envelope_bytes
from nno.kernel.identity import H_REQUEST_ID, SERVICE_IDENTITY
from nno.kernel.logging import loggable_path
from nno.kernel.ratelimit import RateLimiter, retry_after_seconds, route_key

log = structlog.get_logger("nno.edge")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]


async def _send_envelope(
    send: Send, status: int, code: str, message: str, request_id: str, details: Any = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = envelope_bytes(code, message, details, request_id=request_id)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()), *SECURITY_HEADERS, *(headers or ())]})
    await send({"type": "http.response.body", "body": body})


Resolved = tuple[Worker | PagesProject | None, str | None]
ROUTE_TTL_S = 2.0  # how long another process's DNS/deploy change may take to show (in-process: at once)
STATUS_TTL_S = 2.0
MAX_CACHED_ROUTES = 10_000


class EdgeRouter:
    meter: WorkerMeter | None = None  # set by the edge app: counts Worker invocations for Billing

    def __init__(
        self, cloud: LocalCloud, host: WorkerHost, bindings: Bindings, base_domain: str, *,
        limiter: RateLimiter | None = None, max_body_bytes: int = 1_048_576,
    ) -> None:
        self.cloud = cloud
        self.workers = host
        self.bindings = bindings
        self.limiter = limiter
        self.body_limit = BodyLimit(max_body_bytes)
        self.base = base_domain.lower().strip(".")
        self.suffix = "." + self.base
        self._routes: dict[str, tuple[float, Resolved]] = {}
        self._statuses: dict[str, tuple[float, str | None]] = {}
        self.functions = PagesFunctions(host, self.base)

    def changed(self, name: str) -> None:
        """A Worker, Pages project or hostname changed in this process: forget cached routes."""
        self.forget()
        self.workers.invalidate(name)

    def forget(self) -> None:
        """Drop the short-lived route and platform-status caches."""
        self._routes.clear()
        self._statuses.clear()

    # ---- resolution ------------------------------------------------------------------------
    def candidates(self, host: str) -> list[str]:
        """DNS names to try for a request host, most specific first."""
        if not host.endswith(self.suffix) or not names.is_hostname(host):
            return []
        labels = host[: -len(self.suffix)].split(".")
        out = [host]
        if len(labels) == 1:  # {pid}.{base}: the platform's console
            out.append(f"console.app.default.{labels[0]}{self.suffix}")
        elif len(labels) == 2:  # {name}.{pid}.{base}: default-stack service, then app
            name, pid = labels
            out += [f"{name}.svc.default.{pid}{self.suffix}", f"{name}.app.default.{pid}{self.suffix}"]
        return out

    async def resolve(self, host: str) -> Resolved:
        """(target, its name); (None, name) when the host resolves to something not deployed."""
        now = time.monotonic()
        cached = self._routes.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        resolved = await self._resolve(host)
        if len(self._routes) >= MAX_CACHED_ROUTES:
            self._routes.clear()
        self._routes[host] = (now + ROUTE_TTL_S, resolved)
        return resolved

    async def _resolve(self, host: str) -> Resolved:
        candidates = self.candidates(host)
        if not candidates:
            return None, None
        async with self.cloud.db.session() as s:
            for candidate in candidates:
                record = await s.get(DNSRecord, candidate)
                if record is None:
                    continue
                worker = await s.get(Worker, record.target)
                if worker is not None:
                    return worker, record.target
                pages = await s.get(PagesProject, record.target)
                if record.target in self.workers.live():  # deleted by another process: let it go now
                    self.workers.invalidate(record.target)
                return pages, record.target
        return None, None

    # ---- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        incoming_rid = None
        raw_host = ""
        for key, value in scope["headers"]:
            if key == b"host":
                raw_host = value.decode("latin-1")
            elif key == b"x-request-id":
                incoming_rid = value.decode("latin-1")[:200]
        request_id = incoming_rid or str(uuid.uuid4())
        token = request_id_var.set(request_id)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._route(scope, receive, tracking_send, raw_host, request_id)
        except BodyTooLarge:
            raise  # a Worker answered before its body crossed the limit: abort that answer
        except Exception as exc:
            # The edge sits outside every service's error handler: without this, a fault here
            # reached the client as uvicorn's plain-text 500.
            log.exception("edge_failed", host=raw_host, path=loggable_path(scope.get("path", "")), error=repr(exc))
            if not started:
                await _send_envelope(send, 500, "INTERNAL_ERROR", "Internal server error", request_id)
        finally:
            request_id_var.reset(token)

    async def _route(self, scope: Scope, receive: Receive, send: Send, raw_host: str, request_id: str) -> None:
        host = names.host_without_port(raw_host)
        target, target_name = await self.resolve(host)
        if self.limiter is not None:
            client = scope.get("client")
            # What the request reaches: the target (whichever of its host names was used), the route.
            key = f"{client[0] if client else 'unknown'}:{target_name or host}{route_key(scope['path'])}"
            decision = await self.limiter.hit(key)
            if not decision.allowed:
                retry_after = retry_after_seconds(decision)
                await _send_envelope(send, 429, "RATE_LIMITED", "Too many requests; slow down and retry later.",
                                     request_id, {"limit": decision.limit, "retryAfter": retry_after},
                                     [(b"retry-after", str(retry_after).encode())])
                return
        if target is None:
            if target_name is not None:
                await _send_envelope(send, 503, "SERVICE_UNAVAILABLE",
                                     f"{host} points at {target_name}, which is not deployed", request_id)
            else:
                await _send_envelope(send, 404, "NOT_FOUND", f"No site or service at {host or 'this host'}",
                                     request_id)
            return
        if isinstance(target, Worker):
            await self._to_worker(target, scope, receive, send, request_id)
        else:
            await self._to_pages(target, scope, receive, send, request_id, names.host_port(raw_host))

    async def _to_worker(self, worker: Worker, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        headers: list[tuple[bytes, bytes]] = []
        content_length = transfer_encoding = None
        for key, value in scope["headers"]:
            name = key.lower()
            if name.startswith(b"x-nno-"):
                continue
            if name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                transfer_encoding = value
            headers.append((key, value))
        counted: CountedBody | None = None
        admitted = self.body_limit.admit(scope["method"], content_length, transfer_encoding, receive, send)
        if admitted is not None:
            if isinstance(admitted, Refusal):
                await _send_envelope(send, admitted.status, admitted.code, admitted.message, request_id,
                                     admitted.details)
                return
            counted = admitted
            receive, send = counted.receive, counted.send
        try:
            app: ASGIApp = await self.workers.get(worker)
        except Exception as exc:
            log.exception("worker_start_failed", worker=worker.name, error=repr(exc))
            await _send_envelope(send, 503, "SERVICE_UNAVAILABLE", f"Worker {worker.name} could not start",
                                 request_id)
            return
        if self.meter is not None:
            self.meter.count(worker)
        headers.append((H_REQUEST_ID.encode(), request_id.encode()))
        worker_scope = dict(scope)
        worker_scope["headers"] = headers
        worker_scope["root_path"] = ""
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                out = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in out):
                    out.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": out}
            await send(message)

        try:
            await app(worker_scope, receive, tracking_send)
        except Exception as exc:
            if counted is None or not counted.exceeded:
                log.exception("worker_failed", worker=worker.name, error=repr(exc))
                if not started:
                    await _send_envelope(send, 500, "INTERNAL_ERROR", "Internal server error", request_id)
                return
        if counted is not None and counted.exceeded:  # whatever the Worker made of a cut body goes unheard
            if counted.response_started:
                raise BodyTooLarge()
            too_large = self.body_limit.too_large
            await _send_envelope(counted.client_send, too_large.status, too_large.code, too_large.message,
                                 request_id, too_large.details)

    async def _live_status(self, platform_id: str) -> str | None:
        now = time.monotonic()
        cached = self._statuses.get(platform_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        status = await self._fetch_status(platform_id)
        if len(self._statuses) >= MAX_CACHED_ROUTES:
            self._statuses.clear()
        self._statuses[platform_id] = (now + STATUS_TTL_S, status)
        return status

    async def _fetch_status(self, platform_id: str) -> str | None:
        registry = self.bindings.get("registry")
        if registry is None or not platform_id:
            return None
        try:
            resp = await registry.request("GET", f"/{platform_id}/status", headers=SERVICE_IDENTITY.to_headers())
        except Exception:
            return None
        data: Any = resp.json() if resp.ok else None
        status = data.get("status") if isinstance(data, dict) else None
        return status if isinstance(status, str) else None

    async def _to_pages(
        self, project: PagesProject, scope: Scope, receive: Receive, send: Send, request_id: str,
        port: int | None,
    ) -> None:
        method = scope["method"]
        directory = await self.cloud.pages_directory(project)
        if self.functions.handles(directory, method, scope["path"]):  # a site with a Pages Function
            status = await self._live_status(project.platform_id)
            await self.functions.dispatch(project, directory, scope, receive, send, request_id, status)
            return
        if method not in ("GET", "HEAD"):
            await _send_envelope(send, 405, "METHOD_NOT_ALLOWED", "Pages sites are read-only", request_id)
            return
        found = static_file(directory, scope["path"])
        if found is None:
            await _send_envelope(send, 404, "NOT_FOUND", f"No page at {scope['path']}", request_id)
            return
        path, ctype = found
        body: bytes | None = None
        if path.name == INDEX and path.parent == directory.resolve():
            site = read_site(directory)
            if site is not None:  # re-rendered: live status, links on the port this host is served on
                status = await self._live_status(project.platform_id)
                body = render_site(site, status=status, base_domain=self.base, port=port).encode()
        if body is None:
            body = path.read_bytes()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()), (b"cache-control", b"no-cache"), *SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
