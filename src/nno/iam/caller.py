"""Who is calling IAM.

Behind the gateway the global IAM trusts the `X-Nno-*` identity the gateway set (contracts §2). Any
request may also carry its own credential, which IAM checks itself: a session token (bearer or the
`nno_session` cookie) or, for the global IAM, the static service key. A per-platform auth app has
no gateway in front of it, so it ignores `X-Nno-*` headers and believes only credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request

from nno.iam import sessions
from nno.iam.context import SESSION_COOKIE, IAMContext
from nno.iam.models import Session
from nno.iam.security import same_secret
from nno.kernel.context import current_request_id
from nno.kernel.errors import NNOError
from nno.kernel.identity import get_identity

CallerKind = Literal["user", "service", "apikey", "anonymous"]


@dataclass
class Caller:
    kind: CallerKind = "anonymous"
    user_id: str | None = None
    email: str | None = None
    session: Session | None = None
    token: str | None = None
    key_id: str | None = None
    platform_id: str | None = None
    permissions: tuple[str, ...] = ()
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    # Set only on a per-platform auth app, to its platform: there a user's platform-level role (the
    # `role` of their own user row) counts, and a platform-admin has org-admin rights in every
    # organization of the app (`access.use_platform_admin_rights`). Never set by NNO's own IAM.
    auth_app_platform_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    @property
    def actor_id(self) -> str | None:
        return self.user_id or self.key_id


def iam_ctx(request: Request) -> IAMContext:
    ctx: IAMContext = request.app.state.iam
    return ctx


def presented_token(request: Request) -> str | None:
    """The bearer token, else the session cookie."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie or None


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def resolve_caller(request: Request) -> Caller:
    cached: Caller | None = getattr(request.state, "nno_caller", None)
    if cached is not None:
        return cached
    caller = await _resolve(request)
    request.state.nno_caller = caller
    return caller


async def _resolve(request: Request) -> Caller:
    ctx = iam_ctx(request)
    base = Caller(ip=client_ip(request), user_agent=(request.headers.get("user-agent") or "")[:512] or None,
                  request_id=current_request_id())
    if not ctx.trust_gateway_headers and ctx.platform_id is not None:
        # Everything done on a platform's auth app happens on that platform: its audit rows say so.
        base.platform_id = base.auth_app_platform_id = ctx.platform_id
    token = presented_token(request)
    if ctx.trust_gateway_headers:
        ident = get_identity(request)
        if ident.is_service:
            base.kind = "service"
            return base
        if ident.auth_type == "apikey":
            # A key acts for its platform with its permissions, never as the person who made it: it is
            # no org member or admin here, so user_id stays empty (the creator is kept for the audit).
            base.kind = "apikey"
            base.key_id, base.platform_id = ident.key_id, ident.platform_id
            base.permissions = ident.permissions
            if ident.user_id:
                base.extra["key_user_id"] = ident.user_id
            return base
        if ident.auth_type == "session" and ident.user_id:
            # The gateway vouched for the user; the session row is loaded only by routes that need it
            # (`current_session`), so most requests cost IAM no session lookup at all.
            base.kind, base.user_id, base.email = "user", ident.user_id, ident.email
            base.extra["presented_token"] = token or ""
            return base
        if token and same_secret(token, ctx.settings.auth_api_key):
            base.kind = "service"
            return base
    if token:
        found = await sessions.find_session(ctx.db, token)
        if found is not None:
            base.kind, base.user_id, base.session, base.token = "user", found.user_id, found, token
    return base


async def current_session(ctx: IAMContext, caller: Caller) -> Session | None:
    """The caller's session row, loaded from the presented token on first use (and only if it belongs
    to the user the gateway named)."""
    token = caller.extra.pop("presented_token", "")
    if caller.session is None and token and caller.kind == "user":
        found = await sessions.find_session(ctx.db, token)
        if found is not None and found.user_id == caller.user_id:
            caller.session, caller.token = found, token
    return caller.session


async def require_user(request: Request) -> Caller:
    caller = await resolve_caller(request)
    if caller.kind != "user" or not caller.user_id:
        raise NNOError(401, "UNAUTHORIZED", "A signed-in user session is required")
    return caller


async def require_session(request: Request) -> Caller:
    """The session whose token (bearer or cookie) the request presents, checked by IAM itself whatever
    identity headers came with it (sign-out, get-session, session management, gateway validation)."""
    cached: Caller | None = getattr(request.state, "nno_session_caller", None)
    if cached is not None:
        return cached
    ctx = iam_ctx(request)
    token = presented_token(request)
    found = await sessions.find_session(ctx.db, token) if token else None
    if found is None:
        raise NNOError(401, "UNAUTHORIZED", "A valid session token is required")
    caller = Caller(kind="user", user_id=found.user_id, session=found, token=token, ip=client_ip(request),
                    user_agent=(request.headers.get("user-agent") or "")[:512] or None,
                    request_id=current_request_id())
    if not ctx.trust_gateway_headers and ctx.platform_id is not None:
        caller.platform_id = caller.auth_app_platform_id = ctx.platform_id
    request.state.nno_session_caller = caller
    return caller


async def require_service(request: Request) -> Caller:
    caller = await resolve_caller(request)
    if not caller.is_service:
        if caller.kind == "anonymous":
            raise NNOError(401, "UNAUTHORIZED", "Authentication required")
        raise NNOError(403, "FORBIDDEN", "This endpoint is for NNO services only")
    return caller


async def require_authenticated(request: Request) -> Caller:
    caller = await resolve_caller(request)
    if caller.kind == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")
    return caller
