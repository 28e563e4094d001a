"""The console shell's function: the dynamic half of a platform's console site.

Every path that is not a static asset of the site comes here: sign-in (password, magic link,
sign-up, password reset, sign-out) against the platform's auth Worker, the tenant switcher (the
user's active organization is the tenant), the sidebar and permission gates composed from the
features in the site's configuration, the shell's own pages (profile, sessions), and the signed
`ShellContext` cookie every feature page reads.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from nno.console.build import STATIC_PREFIX, ShellConfig, ShellFeature
from nno.sdk.definition import ShellContext, ShellNavGroup, ShellNavLink, ShellStack, ShellUser
from nno.sdk.env import AuthClient, ServiceResponse
from nno.sdk.shell import SHELL_COOKIE, sign_shell_context
from nno.sdk.web import PLATFORM_ADMIN, SESSION_COOKIE, permission_matches

TEMPLATES = Path(__file__).parent / "templates"
PLATFORM_STATUS_HEADER = "x-nno-platform-status"  # set by the edge from the Registry, never by a client
CSRF_COOKIE = "nno_csrf"
CSRF_FIELD = "csrf_token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{icon}; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
JOIN_ROLE = "admin"  # what a platform-admin becomes in a tenant they join from the switcher
SESSION_MAX_AGE_S = 7 * 24 * 3600
_SLUG_RE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class ShellUserView:
    id: str
    email: str
    name: str | None
    role: str | None
    session_id: str | None
    tenant_id: str | None
    permissions: tuple[str, ...]
    token: str

    @property
    def is_platform_admin(self) -> bool:
        return self.role == PLATFORM_ADMIN

    def can(self, permission: str | None) -> bool:
        if permission is None or self.is_platform_admin:
            return True
        return any(permission_matches(p, permission) for p in self.permissions)


def feature_allowed(feature: ShellFeature, user: ShellUserView) -> bool:
    """A feature shows (sidebar and pages) only to a user holding all of its required permissions."""
    return all(user.can(p.key) for p in feature.permissions if p.required)


def sidebar(config: ShellConfig, user: ShellUserView) -> list[dict[str, Any]]:
    """[{feature, items}] the user may see, features and items ordered by `order` then label."""
    out = []
    for feature in config.features:
        if not feature_allowed(feature, user):
            continue
        items = sorted((i for i in feature.navigation if user.can(i.permission)), key=lambda i: (i.order, i.label))
        if items:
            out.append({"feature": feature, "items": items})
    return out


def _route_regex(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", path.rstrip("/") or "/")
    pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{pattern}/?$")


def route_permission(feature: ShellFeature, path: str) -> tuple[bool, str | None]:
    """(path is one of the feature's routes or nav items, the permission it needs)."""
    for route in feature.routes:
        if _route_regex(route.path).match(path):
            return True, route.permission
    for item in feature.navigation:
        if _route_regex(item.path).match(path):
            return True, item.permission
    return False, None


def nav_links(feature_id: str, path: str) -> str:
    """A sidebar item's link: through the shell's gate for that feature."""
    return f"f/{feature_id}{path if path != '/' else ''}"


def _when(ms: Any) -> str:
    """A session's epoch milliseconds as a UTC date and time."""
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _port_of(request: Request) -> int | None:
    return request.url.port


def localize(url: str, port: int | None) -> str:
    """The local cloud serves every host on one port: a portless URL gets the shell's own port."""
    parts = urlsplit(url)
    if port is None or parts.port is not None or not parts.hostname:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


class Shell:
    def __init__(self, config: ShellConfig, auth: AuthClient, *, key: bytes, base_domain: str) -> None:
        self.config = config
        self.auth = auth
        self.key = key  # the platform's ShellContext key (also keys the CSRF tokens)
        self.cookie_domain = f".{config.platformId}.{base_domain.strip('.')}"
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                                            undefined=jinja2.StrictUndefined)
        self.templates.filters["when"] = _when

    @staticmethod
    def client_headers(request: Request) -> dict[str, str]:
        """What the auth Worker records on a new session: the browser it was made in."""
        return {"user-agent": request.headers.get("user-agent", "")[:512]}

    # ---- helpers -------------------------------------------------------------------------------
    def csrf_for(self, seed: str) -> str:
        return hmac.new(self.key, f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()

    async def user(self, request: Request) -> ShellUserView | None:
        if hasattr(request.state, "shell_user"):
            cached: ShellUserView | None = request.state.shell_user
            return cached
        token = request.cookies.get(SESSION_COOKIE)
        user = None
        if token:
            view = await self.auth.session(token)
            if view is not None and view.get("platformId") in (None, self.config.platformId):
                user = ShellUserView(
                    id=str(view.get("userId")), email=str(view.get("email") or ""), name=view.get("name"),
                    role=view.get("role"), session_id=view.get("sessionId"),
                    tenant_id=view.get("activeOrganizationId"),
                    permissions=tuple(str(p) for p in view.get("permissions") or []), token=token)
        request.state.shell_user = user
        request.state.tenant_name = None
        if user is not None and user.tenant_id:
            request.state.tenant_name = next(
                (o.get("name") for o in await self._orgs(user) if o.get("id") == user.tenant_id), None)
        return user

    def context_for(self, request: Request, user: ShellUserView) -> ShellContext:
        port = _port_of(request)
        visible = [f for f in self.config.features if feature_allowed(f, user)]
        stack = next((f.stackId for f in visible), "default")
        shell_url, icon = f"{request.url.scheme}://{request.url.netloc}/", self.config.icon_path()
        return ShellContext(
            platformId=self.config.platformId, platformName=self.config.name, tenantId=user.tenant_id,
            stack=ShellStack(id=stack, name=stack, isDefault=stack == "default"),
            user=ShellUser(id=user.id, email=user.email, name=user.name, role=user.role),
            permissions=list(user.permissions), features=[f.id for f in visible],
            services={f.id: localize(f.url, port) for f in visible},
            shellUrl=shell_url, tenantName=getattr(request.state, "tenant_name", None),
            icon=icon if icon.startswith("https://") else shell_url + icon.lstrip("/"),
            nav=[ShellNavGroup(featureId=g["feature"].id, label=g["feature"].displayName,
                               items=[ShellNavLink(label=i.label, href=nav_links(g["feature"].id, i.path))
                                      for i in g["items"]])
                 for g in sidebar(self.config, user)])

    def page(self, request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        user: ShellUserView | None = getattr(request.state, "shell_user", None)
        seed = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_seed", None)
        new_seed = None
        if not seed:
            seed = new_seed = secrets.token_urlsafe(24)
        port = _port_of(request)
        nav = sidebar(self.config, user) if user else []
        for group in nav:
            group["url"] = localize(group["feature"].url, port)
        html = self.templates.get_template(template).render(
            request=request, config=self.config, user=user, nav=nav, csrf=self.csrf_for(seed),
            csrf_field=CSRF_FIELD, static=f"/{STATIC_PREFIX}", path=request.url.path,
            tenant_name=getattr(request.state, "tenant_name", None), icon=self.config.icon_path(),
            platform_status=request.headers.get(PLATFORM_STATUS_HEADER), **ctx)
        resp = HTMLResponse(html, status_code=status)
        secure = request.url.scheme == "https"
        if new_seed:
            resp.set_cookie(CSRF_COOKIE, new_seed, path="/", httponly=True, samesite="strict", secure=secure)
        if user is not None:
            self.set_shell_cookie(request, resp, user)
        return resp

    def set_shell_cookie(self, request: Request, resp: Response, user: ShellUserView) -> None:
        token = sign_shell_context(self.key, self.context_for(request, user))
        resp.set_cookie(SHELL_COOKIE, token, path="/", domain=self.cookie_domain, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", max_age=600)

    def set_session(self, request: Request, resp: Response, token: str) -> None:
        resp.set_cookie(SESSION_COOKIE, token, path="/", domain=self.cookie_domain, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", max_age=SESSION_MAX_AGE_S)

    def clear_session(self, resp: Response) -> None:
        for name in (SESSION_COOKIE, SHELL_COOKIE):
            resp.delete_cookie(name, path="/", domain=self.cookie_domain)

    async def form(self, request: Request) -> dict[str, str] | None:
        """The posted form when its CSRF token matches this browser's; None otherwise."""
        form = await request.form()
        seed = request.cookies.get(CSRF_COOKIE)
        sent = str(form.get(CSRF_FIELD) or "")
        if not seed or not hmac.compare_digest(sent, self.csrf_for(seed)):
            return None
        return {k: str(v) for k, v in form.items() if isinstance(v, str)}

    def refused(self, request: Request) -> Response:
        return self.error(request, 403, "CSRF_FAILED",
                          "This form expired or did not come from this console. Reload the page and try again.")

    def error(self, request: Request, status: int, code: str, message: str) -> Response:
        if "text/html" not in request.headers.get("accept", "") and request.headers.get("hx-request") != "true":
            return JSONResponse({"error": {"code": code, "message": message, "requestId":
                                           request.headers.get("x-request-id"), "details": None}},
                                status_code=status)
        return self.page(request, "console/error.html", status, status_code=status, code=code, message=message)

    @staticmethod
    def auth_error(resp: Any, fallback: str) -> str:
        body = resp.json()
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
        return str(message or fallback)

    def _signin_redirect(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": "/sign-in"})
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)

    # ---- sign-in -------------------------------------------------------------------------------
    async def sign_in(self, request: Request) -> Response:
        nxt = _safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return self.page(request, "console/sign_in.html", next=nxt, error=None, email="")
        form = await self.form(request)
        if form is None:
            return self.refused(request)
        nxt, email = _safe_next(form.get("next")), form.get("email", "")
        resp = await self.auth.request("POST", "/api/auth/sign-in/email", headers=self.client_headers(request),
                                       json={"email": email, "password": form.get("password", "")})
        token = (resp.json() or {}).get("token") if resp.ok else None
        if not isinstance(token, str) or not token:
            return self.page(request, "console/sign_in.html", 401, next=nxt, email=email,
                             error="Wrong email or password.")
        out = RedirectResponse(nxt, status_code=303)
        self.set_session(request, out, token)
        return out

    async def sign_up(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "console/sign_up.html", error=None, name="", email="")
        form = await self.form(request)
        if form is None:
            return self.refused(request)
        name, email = form.get("name", ""), form.get("email", "")
        resp = await self.auth.request("POST", "/api/auth/sign-up/email", headers=self.client_headers(request),
                                       json={"name": name, "email": email, "password": form.get("password", "")})
        token = (resp.json() or {}).get("token") if resp.ok else None
        if not isinstance(token, str) or not token:
            return self.page(request, "console/sign_up.html", 400 if resp.status < 500 else 502, name=name,
                             email=email, error=self.auth_error(resp, "The account could not be created."))
        out = RedirectResponse("/tenants", status_code=303)
        self.set_session(request, out, token)
        return out

    async def magic_link(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "console/magic_link.html", sent=False, error=None)
        form = await self.form(request)
        if form is None:
            return self.refused(request)
        callback = f"{request.url.scheme}://{request.url.netloc}/magic-link/verify"
        resp = await self.auth.request("POST", "/api/auth/sign-in/magic-link",
                                       json={"email": form.get("email", ""), "callbackURL": callback})
        if not resp.ok:
            return self.page(request, "console/magic_link.html", 400, sent=False,
                             error=self.auth_error(resp, "No link could be sent."))
        return self.page(request, "console/magic_link.html", sent=True, error=None)

    async def magic_link_verify(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        if token:
            resp = await self.auth.request("GET", f"/api/auth/magic-link/verify?token={quote(token, safe='')}")
            session = (resp.json() or {}).get("token") if resp.ok else None
            if isinstance(session, str) and session:
                out = RedirectResponse("/", status_code=303)
                self.set_session(request, out, session)
                return out
        elif await self.user(request) is not None:  # the auth Worker already set the platform cookie
            return RedirectResponse("/", status_code=303)
        return self.error(request, 400, "INVALID_TOKEN", "This sign-in link is invalid or has expired.")

    async def forgot_password(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "console/forgot_password.html", sent=False)
        form = await self.form(request)
        if form is None:
            return self.refused(request)
        redirect = f"{request.url.scheme}://{request.url.netloc}/reset-password"
        await self.auth.request("POST", "/api/auth/request-password-reset",
                                json={"email": form.get("email", ""), "redirectTo": redirect})
        return self.page(request, "console/forgot_password.html", sent=True)

    async def reset_password(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "console/reset_password.html", token=request.query_params.get("token", ""),
                             error=None, done=False)
        form = await self.form(request)
        if form is None:
            return self.refused(request)
        token = form.get("token", "")
        resp = await self.auth.request("POST", "/api/auth/reset-password",
                                       json={"token": token, "newPassword": form.get("password", "")})
        if not resp.ok:
            return self.page(request, "console/reset_password.html", 400, token=token, done=False,
                             error=self.auth_error(resp, "The password could not be reset."))
        return self.page(request, "console/reset_password.html", token="", error=None, done=True)

    async def sign_out(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return self.refused(request)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await self.auth.request("POST", "/api/auth/sign-out", token=token)
        out = RedirectResponse("/sign-in", status_code=303)
        self.clear_session(out)
        return out

    # ---- signed-in pages -----------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return self._signin_redirect(request)
        if not self.config.features:
            return self.page(request, "console/no_features.html")
        return self.page(request, "console/home.html", groups=sidebar(self.config, user))

    async def _orgs(self, user: ShellUserView, *, joinable: bool = False) -> list[dict[str, Any]]:
        """The user's organizations; with `joinable`, a platform-admin also gets every other tenant
        organization of the platform (the Registry's tenants among them), marked `joinable`."""
        resp = await self.auth.request("GET", "/api/auth/organization/list", token=user.token)
        data = resp.json()
        mine = [o for o in data if isinstance(o, dict)] if resp.ok and isinstance(data, list) else []
        if not (joinable and user.is_platform_admin):
            return mine
        known = {o.get("id") for o in mine}
        every = await self.auth.request("GET", "/api/nno/organizations?orgType=tenant", token=user.token)
        listed = (every.json() or {}).get("data", []) if every.ok else []
        return mine + [{**o, "joinable": True} for o in listed if isinstance(o, dict) and o.get("id") not in known]

    async def tenants(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return self._signin_redirect(request)
        error, status = None, 200
        if request.method == "POST":
            form = await self.form(request)
            if form is None:
                return self.refused(request)
            if "name" in form:
                name = form["name"].strip()
                slug = _SLUG_RE.sub("-", name.lower()).strip("-")[:48] or "tenant"
                resp = await self.auth.request("POST", "/api/auth/organization/create", token=user.token,
                                               json={"name": name, "slug": f"{slug}-{secrets.token_hex(3)}"})
                created = resp.json() if resp.ok else None
                if isinstance(created, dict) and created.get("id"):
                    resp = await self.auth.request("POST", "/api/auth/organization/set-active", token=user.token,
                                                   json={"organizationId": created["id"]})
            else:
                org_id = form.get("organizationId", "")
                joined = await self._join(user, org_id) if form.get("join") == "1" else None
                if joined is not None and not joined.ok:
                    resp = joined
                else:
                    resp = await self.auth.request("POST", "/api/auth/organization/set-active", token=user.token,
                                                   json={"organizationId": org_id})
            if resp.ok:
                return RedirectResponse(_safe_next(form.get("next")), status_code=303)
            error, status = self.auth_error(resp, "That did not work."), 400 if resp.status < 500 else 502
        return self.page(request, "console/tenants.html", status, orgs=await self._orgs(user, joinable=True),
                         error=error,
                         next=_safe_next(request.query_params.get("next")))

    async def _join(self, user: ShellUserView, org_id: str) -> ServiceResponse | None:
        """A platform-admin joins a tenant organization they are not in (one the Registry made has no
        members); the auth Worker checks the right again. None when already a member."""
        resp = await self.auth.request("POST", "/api/auth/organization/add-member", token=user.token,
                                       json={"userId": user.id, "role": JOIN_ROLE, "organizationId": org_id})
        if resp.status == 409:
            return None
        return resp

    async def open_feature(self, request: Request) -> Response:
        """`/f/{featureId}/{path}`: the gate in front of every feature page; through it, the page on
        the feature's own host (which checks the session and permission again)."""
        user = await self.user(request)
        if user is None:
            return self._signin_redirect(request)
        fid, path = request.path_params["feature"], "/" + request.path_params.get("path", "")
        feature = next((f for f in self.config.features if f.id == fid), None)
        if feature is None:
            return self.error(request, 404, "NOT_FOUND", f"This console has no feature {fid}.")
        known, permission = route_permission(feature, path)
        if not known:
            return self.error(request, 404, "NOT_FOUND", f"{feature.displayName} has no page {path}.")
        if not feature_allowed(feature, user) or not user.can(permission):
            needed = permission or ", ".join(p.key for p in feature.permissions if p.required)
            return self.error(request, 403, "FORBIDDEN", f"You need the permission {needed} to open this page.")
        target = localize(feature.url, _port_of(request)).rstrip("/") + path
        out = RedirectResponse(target, status_code=303)
        self.set_shell_cookie(request, out, user)
        return out

    async def profile(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return self._signin_redirect(request)
        error, saved = None, False
        if request.method == "POST":
            form = await self.form(request)
            if form is None:
                return self.refused(request)
            resp = await self.auth.request("PATCH", "/api/auth/profile", token=user.token,
                                           json={"name": form.get("name", "")})
            if resp.ok:
                saved = True
                request.state.__dict__.pop("shell_user", None)
                user = await self.user(request) or user
            else:
                error = self.auth_error(resp, "The profile could not be saved.")
        return self.page(request, "console/profile.html", 400 if error else 200, error=error, saved=saved)

    async def sessions(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return self._signin_redirect(request)
        error = None
        if request.method == "POST":
            form = await self.form(request)
            if form is None:
                return self.refused(request)
            sid = form.get("sessionId", "")
            resp = await self.auth.request("DELETE", f"/api/sessions/{quote(sid, safe='')}", token=user.token)
            if resp.ok and sid == user.session_id:
                out = RedirectResponse("/sign-in", status_code=303)
                self.clear_session(out)
                return out
            if not resp.ok:
                error = self.auth_error(resp, "That session could not be revoked.")
        listed = await self.auth.request("GET", "/api/sessions", token=user.token)
        rows = (listed.json() or {}).get("data", []) if listed.ok else []
        return self.page(request, "console/sessions.html", 400 if error else 200, sessions=rows, error=error)

    async def not_found(self, request: Request) -> Response:
        await self.user(request)
        return self.error(request, 404, "NOT_FOUND", f"There is no page at {request.url.path}.")


class _SecurityHeaders:
    """CSP and friends on every answer; refuses cross-origin unsafe requests before any handler."""

    def __init__(self, app: Any, csp: str) -> None:
        self.app = app
        self.csp = csp.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            headers = {k.lower(): v for k, v in scope["headers"]}
            origin, host = headers.get(b"origin"), headers.get(b"host")
            if origin and host and urlsplit(origin.decode("latin-1")).netloc != host.decode("latin-1"):
                body = b'{"error":{"code":"FORBIDDEN","message":"Cross-origin request refused"}}'
                await send({"type": "http.response.start", "status": 403, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"content-security-policy", self.csp),
                                                  (b"cache-control", b"no-store")]}
            await send(message)

        await self.app(scope, receive, with_headers)


# A service binding to the platform's Workers: (worker name, method, path, headers, json) -> answer.
ServiceCall = Callable[[str, str, str, dict[str, str], Any], Awaitable[ServiceResponse]]


def create_console_app(config: ShellConfig, fetch: ServiceCall, *, key: bytes, base_domain: str) -> Any:
    """The site's function. `fetch` is the service binding to the platform's Workers (the auth
    Worker is `config.authWorker`); `key` the platform's ShellContext key."""

    async def auth_fetch(method: str, path: str, headers: dict[str, str], json: Any) -> ServiceResponse:
        return await fetch(config.authWorker, method, path, headers, json)

    shell = Shell(config, AuthClient(auth_fetch), key=key, base_domain=base_domain)
    both = ["GET", "POST"]
    routes = [
        Route("/", shell.home, methods=["GET"]),
        Route("/sign-in", shell.sign_in, methods=both),
        Route("/sign-up", shell.sign_up, methods=both),
        Route("/magic-link", shell.magic_link, methods=both),
        Route("/magic-link/verify", shell.magic_link_verify, methods=["GET"]),
        Route("/forgot-password", shell.forgot_password, methods=both),
        Route("/reset-password", shell.reset_password, methods=both),
        Route("/sign-out", shell.sign_out, methods=["POST"]),
        Route("/tenants", shell.tenants, methods=both),
        Route("/profile", shell.profile, methods=both),
        Route("/sessions", shell.sessions, methods=both),
        Route("/f/{feature}", shell.open_feature, methods=["GET"]),
        Route("/f/{feature}/{path:path}", shell.open_feature, methods=["GET"]),
        Route("/{rest:path}", shell.not_found),
    ]
    app = Starlette(routes=routes)
    app.state.shell = shell
    origin = config.icon_origin
    return _SecurityHeaders(app, CSP.format(icon=f" {origin}" if origin else ""))
