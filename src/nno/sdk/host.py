"""NNO's side of a feature Worker (features never import this): wraps the feature's own app with
the routes every feature host has under `/_nno/`:

- `GET  /_nno/health`: which feature and version this Worker runs;
- `POST /_nno/lifecycle`: provisioning runs the migrations and the lifecycle hooks here, inside the
  Worker with its own bindings; only an NNO service token for this platform (audience
  `feature:{platformId}`) may call it;
- `GET  /_nno/static/*`: the SDK's vendored htmx and stylesheet;
- `GET|POST /_nno/sign-in`, `POST /_nno/sign-out`: sign in with the platform's auth Worker and keep
  the session in a cookie of this host, so a feature is usable by opening its host directly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from nno.sdk.definition import FeatureDefinition, LifecycleEvent, LifecycleName
from nno.sdk.env import FeatureEnv
from nno.sdk.migrations import MigrationError, apply_migrations, drop_feature_data
from nno.sdk.web import SDK_TEMPLATES, SESSION_COOKIE

log = structlog.get_logger("nno.sdk.host")

STATIC_DIR = Path(__file__).parent / "static"
LIFECYCLE_EVENTS: tuple[LifecycleName, ...] = ("activate", "deactivate", "upgrade")
# Verifies an NNO service token for an audience: returns its claims or raises.
TokenVerifier = Callable[[str, str], dict[str, Any]]


def lifecycle_audience(platform_id: str) -> str:
    return f"feature:{platform_id}"


def _envelope(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "requestId": None, "details": details}},
                        status_code=status)


async def run_lifecycle(definition: FeatureDefinition, env: FeatureEnv, event: LifecycleName, *,
                        previous_version: str | None = None, delete_data: bool = False) -> dict[str, Any]:
    """Migrations (activate, upgrade) then the feature's hook; on deactivate the hook, then, when the
    data goes, what its migrations created (in a stack's shared D1 the others' tables stay)."""
    applied: list[str] = []
    if event in ("activate", "upgrade") and definition.migrations is not None:
        applied = await apply_migrations(env.require_d1(), definition.migrations, definition.id,
                                         prefix=env.table_prefix)
    hook = definition.hooks.for_event(event)
    if hook is not None:
        result = hook(LifecycleEvent(event, env, previous_version, delete_data))
        if inspect.isawaitable(result):
            await result
    if event == "deactivate" and delete_data and env.d1 is not None and definition.migrations is not None:
        await drop_feature_data(env.d1, definition.id)
    return {"event": event, "featureId": definition.id, "version": definition.version, "migrations": applied,
            "hook": hook is not None}


def _safe_next(target: str | None) -> str:
    """Only a path of this host: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def build_worker_app(definition: FeatureDefinition, env: FeatureEnv, feature_app: ASGIApp | None,
                     verify_token: TokenVerifier) -> ASGIApp:
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SDK_TEMPLATES)), autoescape=True)

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = templates.get_template(name).render(feature=definition, platform_id=env.platform_id, user=None,
                                                   nav=[], **ctx)
        return HTMLResponse(html, status_code=status)

    async def health(_: Request) -> Response:
        return JSONResponse({"featureId": definition.id, "version": definition.version,
                             "platformId": env.platform_id, "stackId": env.stack_id})

    async def lifecycle(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token:
            return _envelope(401, "UNAUTHORIZED", "An NNO service token is required")
        try:
            verify_token(token, lifecycle_audience(env.platform_id))
        except Exception:
            return _envelope(403, "FORBIDDEN", "This service token is not valid for this platform's features")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("event") not in LIFECYCLE_EVENTS:
            return _envelope(400, "VALIDATION_ERROR", "event must be activate, deactivate or upgrade",
                             {"field": "event"})
        previous = body.get("previousVersion")
        try:
            done = await run_lifecycle(definition, env, body["event"],
                                       previous_version=previous if isinstance(previous, str) else None,
                                       delete_data=body.get("deleteData") is True)
        except MigrationError as exc:
            return _envelope(422, "MIGRATION_FAILED", str(exc))
        except Exception as exc:
            log.exception("feature_lifecycle_failed", feature=definition.id, event=body["event"])
            return _envelope(500, "HOOK_FAILED", f"{type(exc).__name__}: {exc}")
        return JSONResponse(done)

    async def sign_in(request: Request) -> Response:
        if request.method == "GET":
            return page("nno/sign_in.html", next=_safe_next(request.query_params.get("next")), error=None)
        form = await request.form()
        email, password = str(form.get("email") or ""), str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or "/"))
        if env.auth is None:
            return page("nno/sign_in.html", 503, next=target, error="This platform has no auth service")
        resp = await env.auth.request("POST", "/api/auth/sign-in/email",
                                      json={"email": email, "password": password})
        body = resp.json()
        token = body.get("token") if resp.ok and isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return page("nno/sign_in.html", 401, next=target, error="Wrong email or password")
        out = RedirectResponse(target, status_code=303)
        out.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="lax",
                       secure=request.url.scheme == "https")
        return out

    async def sign_out(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token and env.auth is not None:
            await env.auth.request("POST", "/api/auth/sign-out", token=token)
        out = RedirectResponse("/_nno/sign-in", status_code=303)
        out.delete_cookie(SESSION_COOKIE, path="/")
        return out

    async def organization(request: Request) -> Response:
        """Pick the active organization (the tenant feature pages work on), or create one."""
        token = request.headers.get("authorization", "")[7:].strip() or request.cookies.get(SESSION_COOKIE)
        if not token or env.auth is None or await env.auth.session(token) is None:
            return RedirectResponse("/_nno/sign-in?next=/_nno/organization", status_code=303)
        error = None
        target = _safe_next(request.query_params.get("next"))
        if request.method == "POST":
            form = await request.form()
            target = _safe_next(str(form.get("next") or "/"))
            if form.get("name"):
                name = str(form.get("name"))
                slug = "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())[:48] or "org"
                resp = await env.auth.request("POST", "/api/auth/organization/create", token=token,
                                              json={"name": name, "slug": slug})
            else:
                resp = await env.auth.request("POST", "/api/auth/organization/set-active", token=token,
                                              json={"organizationId": str(form.get("organizationId") or "")})
            if resp.ok:
                return RedirectResponse(target, status_code=303)
            body = resp.json()
            error = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
            error = error or f"The auth service answered {resp.status}"
        listed = await env.auth.request("GET", "/api/auth/organization/list", token=token)
        orgs = listed.json() if listed.ok and isinstance(listed.json(), list) else []
        return page("nno/organization.html", 400 if error else 200, orgs=orgs, next=target, error=error)

    async def no_screens(request: Request) -> Response:
        return _envelope(404, "NOT_FOUND", f"Feature {definition.id} serves nothing at {request.url.path}")

    routes: list[Any] = [
        Route("/_nno/health", health, methods=["GET"]),
        Route("/_nno/lifecycle", lifecycle, methods=["POST"]),
        Route("/_nno/sign-in", sign_in, methods=["GET", "POST"]),
        Route("/_nno/sign-out", sign_out, methods=["POST"]),
        Route("/_nno/organization", organization, methods=["GET", "POST"]),
        Mount("/_nno/static", StaticFiles(directory=str(STATIC_DIR)), name="nno-static"),
        Mount("/", feature_app) if feature_app is not None else Route("/{path:path}", no_screens),
    ]
    return _SameOrigin(Starlette(routes=routes))


class _SameOrigin:
    """Refuses cross-site form posts riding on the session cookie: an unsafe request whose Origin
    names another host is a 403 (SameSite=Lax covers most browsers; this covers the rest)."""

    SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in self.SAFE:
            headers = {k.lower(): v for k, v in scope["headers"]}
            origin, host = headers.get(b"origin"), headers.get(b"host")
            if origin and host and origin != b"null" and urlsplit(origin.decode("latin-1")).netloc != \
                    host.decode("latin-1"):
                await _envelope(403, "FORBIDDEN", "Cross-origin request refused")(scope, receive, send)
                return
        await self.app(scope, receive, send)
