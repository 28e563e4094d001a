"""The Portal's browser protections: CSRF tokens, security headers (a strict CSP) and `next=`.

CSRF is a signed double-submit: an HttpOnly `nno_csrf` cookie holds a random nonce and every form
(and htmx, through `hx-headers`) sends HMAC(secret, nonce). A cross-site page can neither read the
cookie nor compute the token, so it cannot forge either half."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from ada_url import URL
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.kernel.redirects import same_origin_target

CSRF_COOKIE = "nno_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)


def csrf_token(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"nno-portal-csrf\0" + nonce.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, nonce: str | None, presented: str | None) -> bool:
    if not nonce or not presented:
        return False
    return hmac.compare_digest(csrf_token(secret, nonce), presented)


def safe_next(target: str | None, base: str, default: str = "/") -> str:
    """A same-site path to go to after signing in. `target` is read as a browser reads it, against the
    Portal's public URL `base`, by the one WHATWG validator (`nno.kernel.redirects`); anything that
    leaves that origin (other hosts, `//host`, `/\\host`, tabs or newlines inside, schemes, user
    info) falls back to `default`. The answer is the parsed URL's path, query and fragment, so what the
    browser follows is what was judged."""
    if not target or len(target) > 2048:
        return default
    absolute = same_origin_target(target, base)
    if absolute is None:
        return default
    url = URL(absolute)
    path = f"{url.pathname}{url.search}{url.hash}"
    # A path of `//x` would itself be read as another host.
    if not path.startswith("/") or path.startswith("//"):
        return default
    return path


class PortalHeadersMiddleware:
    """Adds the security headers to every Portal response and issues the CSRF nonce cookie (kept
    in `scope["state"]["csrf_nonce"]` for the templates) to a browser that has none."""

    def __init__(self, app: ASGIApp, *, secure_cookies: bool) -> None:
        self.app = app
        self.secure = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = _cookie(scope, CSRF_COOKIE)
        fresh = nonce is None or len(nonce) < 16 or len(nonce) > 128
        if fresh:
            nonce = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
                if "cache-control" not in headers:
                    # Pages hold per-user data and a CSRF token; only the vendored assets may be kept.
                    static = scope.get("path", "").startswith("/static/")
                    headers["cache-control"] = "public, max-age=3600" if static else "no-store"
                if fresh:
                    attrs = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")
                    headers.append("set-cookie", f"{CSRF_COOKIE}={nonce}{attrs}")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header is treated as no cookie
                return None
            if name in jar:
                return jar[name].value
    return None
