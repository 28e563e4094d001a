"""Device flow routes (NNO's `/api/nno/device/*` and Better Auth's device authorization plugin's
`/api/auth/device/*`) and the `/activate` page.

The device's requests (`.../device/code`, `.../device/token`) answer errors in the RFC 8628 §3.5
shape, `400 {"error": "authorization_pending" | "slow_down" | "access_denied" | "expired_token" |
"invalid_grant" | ...}`, not the NNO envelope: OAuth clients parse exactly that, and it is the one
place IAM departs from the envelope (Better Auth's routes answer every error so, as its plugin does,
with the top-level `code` and `message` its client reads). The `/activate` page is server-rendered
HTML with CSRF tokens bound to the session (or, for its sign-in form, to a pre-session nonce cookie).
"""

from __future__ import annotations

import html
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from nno.iam import accounts, device
from nno.iam.caller import Caller, iam_ctx, presented_token, require_user, resolve_caller
from nno.iam.models import Session, User
from nno.iam.schemas import SignInBody, UserCodeBody
from nno.iam.security import csrf_token, csrf_valid
from nno.iam.sessions import find_session
from nno.iam.views.common import form_or_json, set_session_cookie
from nno.kernel.errors import NNOError
from nno.kernel.inputs import has_nul

router = APIRouter(tags=["device"])
PRE_SESSION_COOKIE = "nno_csrf"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# RFC 8628 §3.5 errors are 400s in their own shape: documented as such (other 4XX are the envelope).
_OAUTH_ERROR_DOC: dict[str, Any] = {
    "description": "OAuth error (RFC 8628 §3.5): authorization_pending, slow_down, access_denied, "
                   "expired_token, invalid_grant, invalid_request, unsupported_grant_type",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}}},
}


@router.post("/api/nno/device/code", responses={"400": _OAUTH_ERROR_DOC})
async def device_code(request: Request, caller: Caller = Depends(resolve_caller)) -> JSONResponse:
    data = await form_or_json(request)
    if data.get("__invalid__"):
        return _oauth_error(device.DeviceGrantError("invalid_request", "The body must be a form or JSON object"))
    client_id, scope = data.get("client_id"), data.get("scope")
    if not isinstance(client_id, str | None) or not isinstance(scope, str | None):
        return _oauth_error(device.DeviceGrantError("invalid_request", "client_id and scope must be strings"))
    if has_nul([client_id, scope]):  # they are stored: PostgreSQL refuses NUL in text
        return _oauth_error(device.DeviceGrantError("invalid_request", "client_id and scope may not contain NUL"))
    body = await device.request_code(iam_ctx(request), caller, client_id, scope)
    return JSONResponse(body, headers=NO_STORE)


def _oauth_error(err: device.DeviceGrantError) -> JSONResponse:
    return JSONResponse({"error": err.error, "error_description": err.description}, status_code=400,
                        headers=NO_STORE)


@router.post("/api/nno/device/token", responses={"400": _OAUTH_ERROR_DOC})
async def device_token(request: Request, caller: Caller = Depends(resolve_caller)) -> JSONResponse:
    data = await form_or_json(request)
    try:
        if data.get("__invalid__"):
            raise device.DeviceGrantError("invalid_request", "The body must be a form or JSON object")
        values = {k: data.get(k) for k in ("grant_type", "device_code", "client_id")}
        if any(v is not None and not isinstance(v, str) for v in values.values()):
            raise device.DeviceGrantError("invalid_request", "Parameters must be strings")
        result = await device.poll(iam_ctx(request), caller, values["grant_type"], values["device_code"],
                                   values["client_id"])
    except device.DeviceGrantError as err:
        return _oauth_error(err)
    return JSONResponse(result, headers=NO_STORE)


@router.get("/api/nno/device")
async def device_info(request: Request, user_code: str | None = None,
                      _: Caller = Depends(require_user)) -> dict[str, Any]:
    return (await device.describe(iam_ctx(request), user_code)).view()


@router.post("/api/nno/device/approve")
async def approve(body: UserCodeBody, request: Request, caller: Caller = Depends(require_user)) -> dict[str, Any]:
    return (await device.decide(iam_ctx(request), caller, body.userCode, True)).view()


@router.post("/api/nno/device/deny")
async def deny(body: UserCodeBody, request: Request, caller: Caller = Depends(require_user)) -> dict[str, Any]:
    return (await device.decide(iam_ctx(request), caller, body.userCode, False)).view()


# ---- Better Auth's device authorization plugin (`/api/auth/device/*`) ------------------------------
# Its answers: errors are RFC 8628's `{error, error_description}` (with the top-level `code` and
# `message` every error on the surface carries), successes its own shapes.

BA = "/api/auth/device"
# NNO's code -> (status, OAuth error) as the plugin answers it.
_BA_ERRORS: dict[str, tuple[int, str]] = {
    "INVALID_USER_CODE": (400, "invalid_request"), "USER_CODE_NOT_FOUND": (400, "invalid_request"),
    "USER_CODE_EXPIRED": (400, "expired_token"), "USER_CODE_USED": (400, "invalid_request"),
    "DEVICE_CODE_NOT_CLAIMED": (400, "invalid_request"), "ACCESS_DENIED": (403, "access_denied"),
    "UNAUTHORIZED": (401, "unauthorized"),
}


def _ba_error(exc: NNOError) -> JSONResponse:
    status, error = _BA_ERRORS.get(exc.code, (exc.status, "invalid_request"))
    return JSONResponse({"error": error, "error_description": exc.message, "code": exc.code, "message": exc.message},
                        status_code=status, headers=NO_STORE)


def _ba_oauth_error(err: device.DeviceGrantError) -> JSONResponse:
    return JSONResponse({"error": err.error, "error_description": err.description, "code": err.error.upper(),
                         "message": err.description}, status_code=400, headers=NO_STORE)


@router.post(f"{BA}/code", responses={"400": _OAUTH_ERROR_DOC})
async def ba_device_code(request: Request, caller: Caller = Depends(resolve_caller)) -> JSONResponse:
    data = await form_or_json(request)
    client_id, scope = data.get("client_id"), data.get("scope")
    if data.get("__invalid__") or not isinstance(client_id, str) or not client_id \
            or not isinstance(scope, str | None) or has_nul([client_id, scope]):
        return _ba_oauth_error(device.DeviceGrantError(
            "invalid_request", "client_id is required; client_id and scope are strings without NUL"))
    return JSONResponse(await device.request_code(iam_ctx(request), caller, client_id, scope), headers=NO_STORE)


@router.post(f"{BA}/token", responses={"400": _OAUTH_ERROR_DOC})
async def ba_device_token(request: Request, caller: Caller = Depends(resolve_caller)) -> JSONResponse:
    data = await form_or_json(request)
    values = {k: data.get(k) for k in ("grant_type", "device_code", "client_id")}
    try:
        if data.get("__invalid__") or any(not isinstance(v, str) or not v for v in values.values()):
            raise device.DeviceGrantError("invalid_request", "grant_type, device_code and client_id are required")
        result = await device.poll(iam_ctx(request), caller, values["grant_type"], values["device_code"],
                                   values["client_id"])
    except device.DeviceGrantError as err:
        return _ba_oauth_error(err)
    return JSONResponse(result, headers=NO_STORE)


@router.get(BA)
async def ba_device_verify(request: Request, user_code: str = "") -> JSONResponse:
    """The signed-in user opens a code: it is theirs to approve or deny from then on."""
    try:
        caller = await require_user(request)
        info = await device.claim(iam_ctx(request), caller, user_code[:64])
    except NNOError as exc:
        return _ba_error(exc)
    return JSONResponse({"user_code": user_code, "status": info.status, "client_id": info.client_id,
                         "scope": info.scope})


async def _ba_decide(request: Request, approve: bool) -> JSONResponse:
    try:
        caller = await require_user(request)
        body = UserCodeBody.model_validate(await form_or_json(request))
        await device.decide(iam_ctx(request), caller, body.userCode, approve, require_claim=True)
    except ValueError:
        return _ba_error(NNOError(400, "INVALID_USER_CODE", "userCode is required"))
    except NNOError as exc:
        return _ba_error(exc)
    return JSONResponse({"success": True})


@router.post(f"{BA}/approve")
async def ba_device_approve(request: Request) -> JSONResponse:
    return await _ba_decide(request, True)


@router.post(f"{BA}/deny")
async def ba_device_deny(request: Request) -> JSONResponse:
    return await _ba_decide(request, False)


# ---- the /activate page -------------------------------------------------------------------------

# The page wears the NNO Portal's look: its stylesheet and header, served on the same gateway host
# (this router is mounted on NNO's own IAM only), with no inline style or script, so the Portal's
# strict Content-Security-Policy holds here too.
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)} · NNO Portal</title>"
           "<meta name=viewport content='width=device-width,initial-scale=1'>"
           "<link rel=stylesheet href=/static/portal.css><link rel=icon href=/static/favicon.svg type=image/svg+xml>"
           "</head><body><a class=skip href=#main>Skip to content</a><header class=top><a class=brand href=/>NNO</a>"
           "<nav aria-label=Main><a href=/platforms>Platforms</a><a href=/docs>API docs</a></nav></header>"
           f"<main id=main><section class=narrow><h1>{html.escape(title)}</h1><div class=card>{body}</div>"
           "</section></main><footer class=foot>NNO Portal · connecting the NNO CLI</footer></body></html>")
    return HTMLResponse(doc, status_code=status, headers={**NO_STORE, "X-Frame-Options": "DENY",
                                                          "Content-Security-Policy": _CSP})


def _signin_page(request: Request, user_code: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    nonce = request.cookies.get(PRE_SESSION_COOKIE) or secrets.token_urlsafe(24)
    token = csrf_token(iam_ctx(request).settings.signing_secret, "pre:" + nonce)
    err = f"<p class='alert error' role=alert>{html.escape(error)}</p>" if error else ""
    body = (f"<p>Sign in to approve a device.</p>{err}<form method=post action=activate>"
            f"<input type=hidden name=csrf_token value='{token}'><input type=hidden name=action value=signin>"
            f"<input type=hidden name=user_code value='{html.escape(user_code, quote=True)}'>"
            "<label for=email>Email</label><input id=email name=email type=email autocomplete=username required>"
            "<label for=password>Password</label><input id=password name=password type=password "
            "autocomplete=current-password required><button type=submit>Sign in</button></form>"
            f"<p class=muted>New to NNO, or no password? <a href='/activate?user_code={quote(user_code, safe='')}'>"
            "Sign up or get a sign-in link by email</a>, then approve the code.</p>")
    response = _page("Sign in", body, status)
    response.set_cookie(PRE_SESSION_COOKIE, nonce, max_age=3600, path="/", httponly=True, samesite="lax",
                        secure=iam_ctx(request).secure_cookies)
    return response


async def _code_page(request: Request, session: Session, user_code: str, error: str | None = None,
                     status: int = 200) -> HTMLResponse:
    ctx = iam_ctx(request)
    token = csrf_token(ctx.settings.signing_secret, "session:" + session.id)
    async with ctx.db.session() as s:
        user = await s.get(User, session.user_id)
    who = html.escape(user.email if user else "")
    detail = ""
    if user_code and error is None:
        try:
            info = await device.describe(ctx, user_code)
            detail = (f"<p>The application <strong>{html.escape(info.client_id)}</strong> asks to sign in as you"
                      f"{' with scope ' + html.escape(info.scope) if info.scope else ''}.</p>")
        except NNOError as exc:
            error, status = exc.message, exc.status
    err = f"<p class='alert error' role=alert>{html.escape(error)}</p>" if error else ""
    body = (f"<p>Signed in as {who}. Enter the code shown on your device.</p>{err}{detail}"
            f"<form method=post action=activate><input type=hidden name=csrf_token value='{token}'>"
            f"<label for=user_code>Code</label><input id=user_code name=user_code autocomplete=off "
            f"placeholder=ABCD-2345 value='{html.escape(user_code, quote=True)}' required>"
            "<div class=actions><button type=submit name=action value=approve>Approve</button> "
            "<button type=submit name=action value=deny class=secondary>Deny</button></div></form>")
    return _page("Activate a device", body, status)


async def _page_session(request: Request) -> Session | None:
    token = presented_token(request)
    return await find_session(iam_ctx(request).db, token) if token else None


@router.get("/activate", response_class=HTMLResponse)
async def activate_page(request: Request, user_code: str = "") -> Response:
    user_code = user_code[:32]
    session = await _page_session(request)
    if session is None:
        return _signin_page(request, user_code)
    return await _code_page(request, session, user_code)


@router.post("/activate", response_class=HTMLResponse)
async def activate_submit(request: Request) -> Response:
    ctx = iam_ctx(request)
    try:
        form = await request.form()
    except Exception:  # a body that is not a form at all
        return _page("Bad request", "<p class='alert error' role=alert>The request was not a form.</p>", 400)
    fields = {k: v if isinstance(v, str) else "" for k, v in form.items()}
    action, user_code = fields.get("action", ""), fields.get("user_code", "")[:32]
    session = await _page_session(request)
    secret = ctx.settings.signing_secret
    if action == "signin":
        nonce = request.cookies.get(PRE_SESSION_COOKIE) or ""
        if not nonce or not csrf_valid(secret, "pre:" + nonce, fields.get("csrf_token")):
            return _page("Forbidden", "<p class='alert error' role=alert>The form expired; reload the page.</p>", 403)
        try:
            body = SignInBody(email=fields.get("email", ""), password=fields.get("password", ""))
        except ValueError:
            return _signin_page(request, user_code, "Enter a valid email and password.", 400)
        caller = await resolve_caller(request)
        try:
            signed = await accounts.sign_in(ctx, body, caller)
        except NNOError as exc:
            response = _signin_page(request, user_code, exc.message, exc.status)
            if exc.headers:
                response.headers.update(exc.headers)
            return response
        response = await _code_page(request, signed.session, user_code)
        set_session_cookie(response, ctx, signed.token, signed.session)
        return response
    if action not in ("approve", "deny"):
        return _page("Bad request", "<p class='alert error' role=alert>Unknown action.</p>", 400)
    if session is None:
        return _signin_page(request, user_code, "Your session has ended; sign in again.", 401)
    if not csrf_valid(secret, "session:" + session.id, fields.get("csrf_token")):
        return _page("Forbidden", "<p class='alert error' role=alert>The form expired; reload the page.</p>", 403)
    caller = Caller(kind="user", user_id=session.user_id, session=session,
                    ip=request.client.host if request.client else None,
                    user_agent=request.headers.get("user-agent"))
    try:
        info = await device.decide(ctx, caller, user_code, action == "approve")
    except NNOError as exc:
        return await _code_page(request, session, user_code, exc.message, exc.status)
    if info.status == "approved":
        return _page("Device approved", "<p class='alert ok' role=status>Done. You can return to your terminal.</p>")
    return _page("Device denied", "<p>The request was denied. Nothing was signed in.</p>")
