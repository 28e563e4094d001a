"""auth: every /api/* request is authenticated by the seed's three paths, in this order:
1. `Authorization: Bearer <AUTH_API_KEY>` (role `service`);
2. `x-api-key: nno_...` (auth type `apikey`, acting with its maker's current role; validated by IAM);
3. a session token: `Authorization: Bearer <token>`, else the browser cookie `nno_session` (IAM);
else 401 `UNAUTHORIZED`. The first credential present decides: an invalid one is a 401, never a
fall-through to a weaker path.

Public routes (the allowlist in `routing.py`) pass without a credential, and still carry the
resolved identity when a valid one is present (an invalid one is ignored there). With AUTH_API_KEY
unset (local-dev bypass), credential-less requests pass as auth type `dev`; requests that do carry a
credential are still resolved, and an invalid one is still a 401.

The proxy strips every client-supplied X-Nno-* header and sends the identity headers set here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.credentials import (
    ANONYMOUS,
    API_KEY_PREFIX,
    DEV,
    REFUSED,
    SERVICE,
    SESSION_COOKIE,
    AuthUnavailable,
    CredentialResolver,
    Resolved,
)
from nno.gateway.headers import cookie_value, parse_bearer
from nno.gateway.routing import is_public
from nno.gateway.state import client_headers, get_state, send_error

_WWW_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="nno"')


class AuthMiddleware:
    def __init__(self, app: ASGIApp, resolver: CredentialResolver, *, dev_bypass: bool) -> None:
        self.app = app
        self.resolver = resolver
        self.dev_bypass = dev_bypass

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the awaitable of whoever answers. Credentials known without asking IAM (cached,
        # the service key, none, malformed) are decided synchronously: no coroutine of ours.
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return self.app(scope, receive, send)
        known = self._resolve_now(scope)
        if known is None:
            return self._resolve_then_admit(scope, receive, send)
        return self._admit(scope, receive, send, known[0], known[1], is_public(scope["method"], scope["path"]))

    async def _resolve_then_admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        public = is_public(scope["method"], scope["path"])
        try:
            resolved, presented = await self._resolve(scope, get_state(scope).timings)
        except AuthUnavailable:
            if not public:
                await send_error(scope, send, 503, "SERVICE_UNAVAILABLE",
                                 "Authentication service unavailable; retry shortly.")
                return
            resolved, presented = ANONYMOUS, True
        await self._admit(scope, receive, send, resolved, presented, public)

    def _admit(
        self, scope: Scope, receive: Receive, send: Send, resolved: Resolved, presented: bool, public: bool
    ) -> Awaitable[None]:
        if resolved.identity is None:
            if presented and not public:
                return send_error(scope, send, 401, "UNAUTHORIZED", "Invalid or expired credentials",
                                  headers=[_WWW_AUTHENTICATE])
            if not presented and not public and not self.dev_bypass:
                return send_error(scope, send, 401, "UNAUTHORIZED", "Authentication required",
                                  headers=[_WWW_AUTHENTICATE])
            resolved = DEV if (not presented and not public) else ANONYMOUS
        state = get_state(scope)
        state.identity = resolved.identity
        state.identity_headers = resolved.headers
        return self.app(scope, receive, send)

    def _resolve_now(self, scope: Scope) -> tuple[Resolved, bool] | None:
        """`_resolve`'s answer when it needs no IAM call (a cached or static outcome), else None."""
        found = client_headers(scope)
        authorization, api_key = found.authorization, found.api_key
        bearer = parse_bearer(authorization)
        if bearer is not None and api_key is None and (cached := self.resolver.cached_session(bearer)) is not None:
            return cached, True  # a known session token (the common case): no key comparison needed
        if bearer is not None and self.resolver.is_service_key(bearer):
            return SERVICE, True
        if api_key is not None:
            key = api_key.decode("latin-1").strip()
            if not key.startswith(API_KEY_PREFIX) or len(key) > 512:
                return REFUSED, True
            cached = self.resolver.cached_api_key(key)
        elif bearer is not None:
            return None  # not cached (checked above)
        elif authorization is not None:
            return REFUSED, True  # an Authorization header we cannot read
        elif (token := cookie_value(found.cookie, SESSION_COOKIE)) is not None:
            cached = self.resolver.cached_session(token)
        else:
            return REFUSED, False
        return (cached, True) if cached is not None else None

    async def _resolve(self, scope: Scope, timings: list[tuple[str, float]]) -> tuple[Resolved, bool]:
        """(outcome, whether any credential was presented). Outcome identity None = refused/none."""
        found = client_headers(scope)  # the last Authorization / x-api-key, every Cookie joined
        authorization, api_key, cookie = found.authorization, found.api_key, found.cookie
        bearer = parse_bearer(authorization)
        if bearer is not None and api_key is None and (cached := self.resolver.cached_session(bearer)) is not None:
            return cached, True  # a known session token (the common case): no key comparison needed
        if bearer is not None and self.resolver.is_service_key(bearer):
            return SERVICE, True
        started = time.perf_counter()
        if api_key is not None:
            key = api_key.decode("latin-1").strip()
            if not key.startswith(API_KEY_PREFIX) or len(key) > 512:
                return Resolved(None), True
            resolved, asked = await self.resolver.api_key(key)
        elif bearer is not None:
            resolved, asked = await self.resolver.session(bearer)
        elif authorization is not None:
            return Resolved(None), True  # an Authorization header we cannot read
        elif (token := cookie_value(cookie, SESSION_COOKIE)) is not None:
            resolved, asked = await self.resolver.session(token, from_cookie=True)
        else:
            return Resolved(None), False
        if asked:
            timings.append(("auth", (time.perf_counter() - started) * 1000))
        return resolved, True
