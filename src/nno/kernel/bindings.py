"""Service bindings: how one NNO component reaches another.

Embedded mode dispatches in-process to the service's ASGI app (no socket, no copy), like
Cloudflare service bindings. Scaled mode reaches a `NNO_<SERVICE>_URL` over HTTP with aiohttp's
pooled client. Both offer the same two operations:

- `forward(scope, receive, send, path)`: proxy a whole ASGI request, streaming both ways (gateway);
- `request(method, path, ...)`: a buffered call returning a `BindingResponse` (service to service).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json as jsonlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlencode

import aiohttp
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.kernel.context import request_id_var, trace_id_var
from nno.kernel.identity import H_CLIENT_IP, H_INTERNAL_TOKEN, H_REQUEST_ID, H_TRACE_ID

# RFC 9110 §7.6.1 connection-specific headers, never forwarded by a proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)


class UpstreamError(Exception):
    """The upstream could not be reached (502) or did not answer in time (504). `response_started`:
    the failure came after the upstream's response had started reaching the caller (mid-stream), so
    no error answer can be sent any more."""

    def __init__(self, status: int, message: str, *, response_started: bool = False) -> None:
        self.status = status
        self.response_started = response_started
        super().__init__(message)


@dataclass
class BindingResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        return jsonlib.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def internal_token(secret: bytes) -> str:
    """The header value that proves an HTTP call comes from an NNO component (scaled mode)."""
    return hmac.new(secret, b"nno-internal-call", hashlib.sha256).hexdigest()


_HOP_BY_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)


def _named_by_connection(value: bytes) -> set[bytes]:
    """The headers a `Connection` value names, minus NNO's own: `X-Nno-*` and `traceparent` are set
    by the gateway (whose clients' copies it already dropped), so a client naming them in
    `Connection` must not make the binding drop the gateway's identity, request id or trace."""
    named = {v.strip().lower() for v in value.split(b",")}
    return {n for n in named if not n.startswith(b"x-nno-") and n != b"traceparent"}


def strip_hop_by_hop(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers without the hop-by-hop ones (RFC 9110 §7.6.1) and those `Connection` names."""
    for name, _ in headers:
        if name.lower() in _HOP_BY_HOP_BYTES:
            break
    else:  # the common case: nothing to drop, no copy
        return headers
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named |= _named_by_connection(value)
    if named:
        return [(n, v) for n, v in headers if n.lower() not in _HOP_BY_HOP_BYTES and n.lower() not in named]
    return [(n, v) for n, v in headers if n.lower() not in _HOP_BY_HOP_BYTES]


def _context_headers() -> dict[str, str]:
    headers = {}
    if rid := request_id_var.get():
        headers[H_REQUEST_ID] = rid
    if tid := trace_id_var.get():
        headers[H_TRACE_ID] = tid
    return headers


class Binding(Protocol):
    name: str

    async def forward(self, scope: Scope, receive: Receive, send: Send, path: str) -> None: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
    ) -> BindingResponse: ...

    async def close(self) -> None: ...


def _split_path(path: str) -> tuple[str, str]:
    if "?" in path:
        p, q = path.split("?", 1)
        return p, q
    return path, ""


def _encode_body(json: Any, content: bytes | None, headers: dict[str, str]) -> bytes:
    if json is not None:
        headers.setdefault("content-type", "application/json")
        return jsonlib.dumps(json, separators=(",", ":")).encode()
    return content or b""


class _InFlight:
    """One in-process call waiting for its response to start; also the call's `send`, which stops
    the watch when the response starts (an object, not a closure per call: the gateway's hot path)."""

    __slots__ = ("calls", "deadline", "expired", "send", "started", "task")

    def __init__(self, task: asyncio.Task[Any], deadline: float, calls: set[_InFlight]) -> None:
        self.task = task
        self.deadline = deadline
        self.calls = calls
        self.started = False
        self.expired = False
        self.send: Send | None = None

    async def __call__(self, message: Message) -> None:
        if not self.started and message["type"] == "http.response.start":
            self.started = True
            self.calls.discard(self)
            headers = message.get("headers")
            if headers:  # hop-by-hop headers stay on this side, as over HTTP
                message["headers"] = strip_hop_by_hop(headers if type(headers) is list else list(headers))
        assert self.send is not None
        await self.send(message)


class _Watchdog:
    """Enforces the in-process timeout with one periodic timer per binding instead of a timer per
    call: the gateway's hot path then allocates no timer handle per request (a cancelled handle
    lingers in the loop's heap until its 30 s deadline). Precision: a quarter of the timeout, at
    most half a second."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.tick_s = min(timeout_s / 4, 0.5)
        self.calls: set[_InFlight] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def watch(self) -> _InFlight:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        call = _InFlight(task, loop.time() + self.timeout_s, self.calls)
        self.calls.add(call)
        if self._handle is None or self._loop is not loop:
            self._loop = loop
            self._handle = loop.call_later(self.tick_s, self._tick)
        return call

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for call in [c for c in self.calls if c.deadline <= now]:
            self.calls.discard(call)
            if not call.started and not call.task.done():
                call.expired = True
                call.task.cancel()
        self._handle = self._loop.call_later(self.tick_s, self._tick) if self.calls else None


@dataclass
class ASGIBinding:
    """In-process dispatch to a service's ASGI app."""

    name: str
    app: ASGIApp
    timeout_s: float = 30.0
    _closed: bool = field(default=False, repr=False)
    _watchdog: _Watchdog | None = field(default=None, repr=False)

    async def forward(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        # `path` is percent-encoded as on the wire (so an encoded `?` or `%` stays data); the ASGI
        # scope carries it decoded in `path` and as sent in `raw_path`.
        raw_path, query = _split_path(path)
        upstream_scope = dict(scope)
        upstream_scope["path"] = unquote(raw_path) if "%" in raw_path else raw_path
        upstream_scope["raw_path"] = raw_path.encode("latin-1")
        if query:
            upstream_scope["query_string"] = query.encode()
        upstream_scope["root_path"] = ""
        upstream_scope["headers"] = strip_hop_by_hop(list(scope["headers"]))
        await self._run(upstream_scope, receive, send)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The timeout covers the wait for the response to start; a started stream may run long.
        # Runs in the caller's task (no extra task per call: this is the gateway's hot path).
        if self._watchdog is None or self._watchdog.timeout_s != self.timeout_s:
            self._watchdog = _Watchdog(self.timeout_s)
        watchdog = self._watchdog
        call = watchdog.watch()
        call.send = send
        try:
            await self.app(scope, receive, call)
        except asyncio.CancelledError:
            if call.expired:
                call.task.uncancel()
                raise UpstreamError(504, f"service {self.name} did not answer within {self.timeout_s:g}s") from None
            raise
        finally:
            watchdog.calls.discard(call)
        if call.expired and not call.started:  # the app swallowed the cancellation
            call.task.uncancel()
            raise UpstreamError(504, f"service {self.name} did not answer within {self.timeout_s:g}s")

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
    ) -> BindingResponse:
        hdrs = {k.lower(): v for k, v in _context_headers().items()}
        hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
        body = _encode_body(json, content, hdrs)
        hdrs["content-length"] = str(len(body))
        raw_path, query = _split_path(path)
        if params:
            query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()],
            "client": ("127.0.0.1", 0),
            "server": ("nno-internal", 80),
            "state": {},
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # no disconnect until the app is done
            return {"type": "http.disconnect"}

        status = 500
        resp_headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status, resp_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                resp_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._run(scope, receive, send)
        return BindingResponse(status, resp_headers, b"".join(chunks))

    async def close(self) -> None:
        self._closed = True


class HTTPBinding:
    """A service reached over HTTP (scaled mode), with one pooled aiohttp session per binding."""

    def __init__(self, name: str, base_url: str, secret: bytes, timeout_s: float = 30.0) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._token = internal_token(secret)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s),
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def forward(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in strip_hop_by_hop(list(scope["headers"]))
            if k.lower() not in (b"host", b"content-length")
        ]
        headers.append((H_INTERNAL_TOKEN, self._token))
        client = scope.get("client")
        if client:
            headers.append((H_CLIENT_IP, str(client[0])))
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        query = scope.get("query_string", b"").decode("latin-1")
        url = self.base_url + path + (("?" + query) if query and "?" not in path else "")
        length = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
        if length is not None:
            headers.append(("content-length", length.decode("latin-1")))
        started = False
        try:
            async with self._client().request(
                scope["method"], url, headers=headers, data=body() if has_body else None, allow_redirects=False
            ) as resp:
                out_headers = strip_hop_by_hop(
                    [(k.lower(), v) for k, v in resp.raw_headers]
                )
                started = True
                await send({"type": "http.response.start", "status": resp.status, "headers": out_headers})
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamError(504, f"service {self.name} did not answer in time",
                                response_started=started) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, f"service {self.name} is unreachable: {exc.__class__.__name__}",
                                response_started=started) from exc

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
    ) -> BindingResponse:
        hdrs = {k.lower(): v for k, v in _context_headers().items()}
        hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
        hdrs[H_INTERNAL_TOKEN] = self._token
        body = _encode_body(json, content, hdrs)
        clean_params = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self._client().request(
                method.upper(), self.base_url + path, headers=hdrs, data=body or None, params=clean_params
            ) as resp:
                data = await resp.read()
                return BindingResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, data)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamError(504, f"service {self.name} did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, f"service {self.name} is unreachable: {exc.__class__.__name__}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Bindings:
    """Name -> binding. A missing service raises KeyError; the gateway turns that into a 404."""

    def __init__(self) -> None:
        self._bindings: dict[str, Binding] = {}

    def add(self, binding: Binding) -> None:
        self._bindings[binding.name] = binding

    def get(self, name: str) -> Binding | None:
        return self._bindings.get(name)

    def __getitem__(self, name: str) -> Binding:
        return self._bindings[name]

    def __contains__(self, name: object) -> bool:
        return name in self._bindings

    def names(self) -> list[str]:
        return list(self._bindings)

    async def close(self) -> None:
        for binding in self._bindings.values():
            await binding.close()
