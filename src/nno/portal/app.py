"""The Portal's ASGI app and which requests on the gateway's host are its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from nno.kernel.config import Settings
from nno.kernel.errors import NNOError
from nno.portal import account, billing, catalogue, invitations, operators, platforms
from nno.portal.gateway_client import GatewayClient
from nno.portal.security import PortalHeadersMiddleware
from nno.portal.web import PortalConfig, PortalError, SignInRequired, Web, check_csrf, templates

STATIC_DIR = Path(__file__).parent / "static"
# One vendored htmx for every NNO web page: the feature SDK's copy (the console shell uses it too).
VENDOR_DIR = Path(__file__).parent.parent / "sdk" / "static"


def create_portal(settings: Settings, gateway: ASGIApp) -> ASGIApp:
    public = urlsplit(settings.public_url)
    app = FastAPI(title="NNO Portal", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(check_csrf)])
    app.state.portal = PortalConfig(GatewayClient(gateway, public.netloc or "127.0.0.1"), settings.signing_secret,
                                    public.scheme == "https", settings.public_url)
    app.mount("/static/vendor", StaticFiles(directory=VENDOR_DIR), name="vendor")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(account.router)
    app.include_router(platforms.router)
    app.include_router(catalogue.router)
    app.include_router(billing.router)
    app.include_router(operators.router)
    app.include_router(invitations.router)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        target = "/sign-in?next=" + quote(exc.next_path, safe="")
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PortalError)
    async def portal_error(request: Request, exc: PortalError) -> Response:
        # The session view is exempt from the lifecycle check, so a suspended platform's owner
        # still sees who they are signed in as.
        me = await Web(request).me()
        return _error_page(request, exc.answer.status, exc.answer.error, me)

    @app.exception_handler(NNOError)
    async def nno_error(request: Request, exc: NNOError) -> Response:
        return _error_page(request, exc.status, {"code": exc.code, "message": exc.message})

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        return _error_page(request, 404, {"code": "NOT_FOUND", "message": "There is no such page."})

    return PortalHeadersMiddleware(app, secure_cookies=public.scheme == "https")


def _error_page(request: Request, status: int, error: dict[str, object],
                me: dict[str, Any] | None = None) -> HTMLResponse:
    from nno.portal.security import csrf_token

    nonce = getattr(request.state, "csrf_nonce", "") or ""
    template = "_error.html" if request.headers.get("hx-request") else "error.html"
    return templates.TemplateResponse(request, template, {
        "request": request, "status": status, "error": error, "me": me,
        "csrf": csrf_token(request.app.state.portal.secret, nonce), "csrf_field": "csrf",
    }, status_code=status)
