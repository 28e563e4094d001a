"""Builds the gateway ASGI app: the seed's ten middlewares, outermost first, around the proxy.

securityHeaders > errorHandler > requestId > requestLogger > timing > rateLimiter > cors >
tracing > auth > platformLifecycle > proxy (own routes and prefix routing)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.credentials import CredentialResolver
from nno.gateway.middleware.auth import AuthMiddleware
from nno.gateway.middleware.cors import CORSMiddleware
from nno.gateway.middleware.error_handler import ErrorHandlerMiddleware
from nno.gateway.middleware.platform_lifecycle import PlatformLifecycleMiddleware, PlatformStatusLookup
from nno.gateway.middleware.rate_limiter import RateLimiterMiddleware
from nno.gateway.middleware.request_id import RequestIdMiddleware
from nno.gateway.middleware.request_logger import RequestLoggerMiddleware
from nno.gateway.middleware.security_headers import SecurityHeadersMiddleware
from nno.gateway.middleware.timing import TimingMiddleware
from nno.gateway.middleware.tracing import TracingMiddleware
from nno.gateway.openapi import OpenAPIDocument
from nno.gateway.proxy import GatewayProxy
from nno.kernel.bindings import Bindings
from nno.kernel.config import Settings
from nno.kernel.kv import KeyValueStore
from nno.kernel.ratelimit import RateLimiter, limiter_for


@dataclass
class Gateway:
    """The gateway app, with its stateful parts reachable for tests and diagnostics."""

    pipeline: ASGIApp
    limiter: RateLimiter
    credentials: CredentialResolver
    statuses: PlatformStatusLookup
    openapi: OpenAPIDocument

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.pipeline(scope, receive, send)


def create_gateway(
    settings: Settings, bindings: Bindings, kv: KeyValueStore, *, limiter: RateLimiter | None = None
) -> Gateway:
    limiter = limiter or limiter_for(settings, kv)
    credentials = CredentialResolver(settings, bindings)
    statuses = PlatformStatusLookup(kv, bindings, settings.status_cache_ttl_s)
    openapi = OpenAPIDocument(bindings)
    app: ASGIApp = GatewayProxy(bindings, openapi, max_body_bytes=settings.max_body_bytes)
    app = PlatformLifecycleMiddleware(app, statuses, max_body_bytes=settings.max_body_bytes)
    app = AuthMiddleware(app, credentials, dev_bypass=settings.dev_bypass)
    app = TracingMiddleware(app)
    app = CORSMiddleware(app, settings.cors_origin_list)
    app = RateLimiterMiddleware(app, limiter)
    app = TimingMiddleware(app)
    app = RequestLoggerMiddleware(app)
    app = RequestIdMiddleware(app)
    app = ErrorHandlerMiddleware(app)
    app = SecurityHeadersMiddleware(app, dev_bypass=settings.dev_bypass)
    return Gateway(app, limiter, credentials, statuses, openapi)
