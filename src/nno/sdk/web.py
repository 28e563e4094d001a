"""What a feature's Worker uses to serve its screens: a FastAPI app wired to its env, Jinja2
templates (the feature's own, then the SDK's `nno/base.html` layout with htmx), and permission
gates resolved against the platform's auth Worker.

    def create_worker_app(env: FeatureEnv) -> FastAPI:
        app = create_feature_app(definition, env)

        @app.get("/")
        async def home(request: Request, user: FeatureUser = Depends(require_permission("tasks:read"))):
            return render(request, "tasks/index.html", {"tasks": ...})
        return app

A page asks for a session (bearer token or the `nno_session` cookie this host set at
`/_nno/sign-in`); without one, a browser is sent to the sign-in page and an API client gets a 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from nno.sdk.definition import FeatureDefinition, FeatureNavItem
from nno.sdk.env import FeatureEnv

SESSION_COOKIE = "nno_session"
PLATFORM_ADMIN = "platform-admin"
SDK_TEMPLATES = Path(__file__).parent / "templates"


def permission_matches(held: str, wanted: str) -> bool:
    """IAM's rule: exact, `*`, or `{featureId}:*`."""
    if held == wanted or held == "*":
        return True
    return held.endswith(":*") and wanted.startswith(held[:-1])


@dataclass(frozen=True)
class FeatureUser:
    id: str
    email: str
    name: str | None
    role: str | None  # the platform-level role on the platform's auth Worker
    active_organization_id: str | None
    permissions: tuple[str, ...] = ()
    token: str = field(default="", repr=False)

    @property
    def is_platform_admin(self) -> bool:
        return self.role == PLATFORM_ADMIN

    def can(self, permission: str) -> bool:
        return self.is_platform_admin or any(permission_matches(p, permission) for p in self.permissions)


class SignInRequired(Exception):
    pass


class TenantRequired(Exception):
    """The page works on one tenant (an organization of the platform) and none is active."""


class PermissionDenied(Exception):
    def __init__(self, permission: str) -> None:
        self.permission = permission
        super().__init__(permission)


@dataclass
class FeatureState:
    definition: FeatureDefinition
    env: FeatureEnv
    templates: jinja2.Environment


def feature_state(request: Request) -> FeatureState:
    state: FeatureState = request.app.state.nno_feature
    return state


def presented_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return request.cookies.get(SESSION_COOKIE) or None


async def optional_user(request: Request) -> FeatureUser | None:
    """The signed-in user of the platform, or None. Cached on the request."""
    if hasattr(request.state, "nno_user"):
        cached: FeatureUser | None = request.state.nno_user
        return cached
    token = presented_token(request)
    user = None
    env = feature_state(request).env
    if token and env.auth is not None:
        view = await env.auth.session(token)
        if view is not None and view.get("platformId") in (None, env.platform_id):
            user = FeatureUser(
                id=str(view.get("userId")), email=str(view.get("email") or ""), name=view.get("name"),
                role=view.get("role"), active_organization_id=view.get("activeOrganizationId"),
                permissions=tuple(str(p) for p in view.get("permissions") or []), token=token)
    request.state.nno_user = user
    return user


async def current_user(request: Request) -> FeatureUser:
    user = await optional_user(request)
    if user is None:
        raise SignInRequired()
    return user


def require_permission(permission: str) -> Callable[[Request], Awaitable[FeatureUser]]:
    """A dependency: the signed-in user holding `permission` (platform-admins hold every one)."""

    async def dependency(request: Request) -> FeatureUser:
        user = await current_user(request)
        if not user.can(permission):
            raise PermissionDenied(permission)
        return user

    return dependency


def require_tenant(permission: str) -> Callable[[Request], Awaitable[FeatureUser]]:
    """Like `require_permission`, for pages over one tenant's data: the user's active organization
    (`user.active_organization_id`) is the tenant; without one they are sent to pick one."""

    async def dependency(request: Request) -> FeatureUser:
        user = await current_user(request)
        if not user.active_organization_id:
            raise TenantRequired()
        if not user.can(permission):
            raise PermissionDenied(permission)
        return user

    return dependency


def _nav(definition: FeatureDefinition, user: FeatureUser | None) -> list[FeatureNavItem]:
    items = sorted(definition.navigation, key=lambda i: (i.order, i.label))
    return [i for i in items if i.permission is None or (user is not None and user.can(i.permission))]


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> HTMLResponse:
    """Render a template with the feature, the user and the sidebar; htmx requests get the same
    template (write partials as their own templates)."""
    state = feature_state(request)
    user: FeatureUser | None = getattr(request.state, "nno_user", None)
    ctx = {"request": request, "feature": state.definition, "user": user, "nav": _nav(state.definition, user),
           "platform_id": state.env.platform_id, "htmx": request.headers.get("hx-request") == "true",
           **(context or {})}
    html = state.templates.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and request.headers.get("hx-request") != "true"


def _error(request: Request, status: int, code: str, message: str) -> Response:
    if _wants_html(request) or request.headers.get("hx-request") == "true":
        return render(request, "nno/error.html", {"status": status, "code": code, "message": message},
                      status_code=status)
    return JSONResponse({"error": {"code": code, "message": message, "requestId":
                                   request.headers.get("x-request-id"), "details": None}}, status_code=status)


def create_feature_app(definition: FeatureDefinition, env: FeatureEnv, *, title: str | None = None) -> FastAPI:
    """A FastAPI app for the feature's Worker, with its templates and static files."""
    app = FastAPI(title=title or definition.displayName, version=definition.version,
                  docs_url=None, redoc_url=None, openapi_url=None)
    loaders: list[jinja2.BaseLoader] = []
    if definition.templates is not None:
        loaders.append(jinja2.FileSystemLoader(str(definition.templates)))
    loaders.append(jinja2.FileSystemLoader(str(SDK_TEMPLATES)))
    templates = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                                   undefined=jinja2.StrictUndefined)
    app.state.nno_feature = FeatureState(definition, env, templates)
    if definition.static is not None:
        app.mount("/static", StaticFiles(directory=str(definition.static)), name="static")

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _: SignInRequired) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/_nno/sign-in?next={quote(target, safe='')}", status_code=303)
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": "/_nno/sign-in"})
        return _error(request, 401, "UNAUTHORIZED", "Sign in to use this feature")

    @app.exception_handler(TenantRequired)
    async def tenant_required(request: Request, _: TenantRequired) -> Response:
        if _wants_html(request):
            return RedirectResponse(f"/_nno/organization?next={quote(request.url.path, safe='')}", status_code=303)
        return _error(request, 409, "TENANT_REQUIRED", "Choose an organization (tenant) first")

    @app.exception_handler(PermissionDenied)
    async def permission_denied(request: Request, exc: PermissionDenied) -> Response:
        return _error(request, 403, "FORBIDDEN", f"This needs the permission {exc.permission}")

    return app
