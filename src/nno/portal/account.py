"""Account pages: sign up, sign in (password or magic link), sign out, password reset, profile,
active sessions, and the device-flow `/activate` entry. All through IAM's public routes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nno.portal.security import safe_next
from nno.portal.web import IAM, WebDep, form_data, redirect

router = APIRouter()
AUTH = f"{IAM}/api/auth"
DEVICE_PAGE = f"{IAM}/activate"


def _device_page(user_code: str) -> str:
    return DEVICE_PAGE + (f"?{urlencode({'user_code': user_code})}" if user_code else "")


@router.get("/")
async def home(w: WebDep) -> Response:
    if await w.me() is None:
        return redirect("/sign-in")
    return redirect("/platforms")


@router.get("/sign-in")
async def sign_in_page(w: WebDep, next: str = "/", sent: str = "") -> Response:
    return w.render("sign_in.html", next=safe_next(next, w.config.public_url), sent=sent == "1")


@router.post("/sign-in")
async def sign_in(w: WebDep, request: Request) -> Response:
    form = await form_data(request)
    target = safe_next(form.get("next"), w.config.public_url)
    answer = await w.api("POST", f"{AUTH}/sign-in/email", token="",
                         json={"email": form.get("email", ""), "password": form.get("password", ""),
                               "rememberMe": form.get("remember") == "on"})
    if not answer.ok:
        return w.render("sign_in.html", status_code=answer.status, next=target, error=answer.message,
                        email=form.get("email", ""))
    return _signed_in(w, answer.data, target, form.get("remember") == "on")


def _signed_in(w: Any, data: dict[str, Any], target: str, remember: bool = True) -> Response:
    response = redirect(target)
    session = data.get("session") or {}
    max_age = None
    if remember and isinstance(session.get("expiresAt"), int) and isinstance(session.get("createdAt"), int):
        max_age = max(0, (session["expiresAt"] - session["createdAt"]) // 1000)
    w.set_session(response, str(data["token"]), max_age)
    return response


@router.post("/sign-in/magic-link")
async def magic_link(w: WebDep, request: Request) -> Response:
    form = await form_data(request)
    target = safe_next(form.get("next"), w.config.public_url)
    answer = await w.api("POST", f"{AUTH}/sign-in/magic-link", token="",
                         json={"email": form.get("email", ""), "callbackURL": target})
    if not answer.ok:
        return w.render("sign_in.html", status_code=answer.status, next=target, error=answer.message,
                        email=form.get("email", ""))
    return w.render("sign_in.html", next=target, sent=True)


@router.get("/sign-up")
async def sign_up_page(w: WebDep, next: str = "/platforms/new") -> Response:
    return w.render("sign_up.html", next=safe_next(next, w.config.public_url, "/platforms/new"))


@router.post("/sign-up")
async def sign_up(w: WebDep, request: Request) -> Response:
    form = await form_data(request)
    target = safe_next(form.get("next"), w.config.public_url, "/platforms/new")
    answer = await w.api("POST", f"{AUTH}/sign-up/email", token="",
                         json={"name": form.get("name", ""), "email": form.get("email", ""),
                               "password": form.get("password", "")})
    if not answer.ok:
        return w.render("sign_up.html", status_code=answer.status, next=target, error=answer.message,
                        name=form.get("name", ""), email=form.get("email", ""))
    return _signed_in(w, answer.data, target)


@router.post("/sign-out")
async def sign_out(w: WebDep, request: Request) -> Response:
    if w.token:
        await w.api("POST", f"{AUTH}/sign-out", json={})
    response = redirect("/sign-in", request)
    w.clear_session(response)
    return response


@router.get("/forgot-password")
async def forgot_page(w: WebDep) -> Response:
    return w.render("forgot.html")


@router.post("/forgot-password")
async def forgot(w: WebDep, request: Request) -> Response:
    form = await form_data(request)
    answer = await w.api("POST", f"{AUTH}/request-password-reset", token="",
                         json={"email": form.get("email", ""), "redirectTo": "/reset-password"})
    if not answer.ok:
        return w.render("forgot.html", status_code=answer.status, error=answer.message, email=form.get("email", ""))
    return w.render("forgot.html", sent=True)


@router.get("/reset-password")
async def reset_page(w: WebDep, token: str = "", error: str = "") -> Response:
    problem = "This reset link is invalid or has expired; ask for a new one." if error or not token else None
    return w.render("reset.html", token=token, error=problem)


@router.post("/reset-password")
async def reset(w: WebDep, request: Request) -> Response:
    form = await form_data(request)
    answer = await w.api("POST", f"{AUTH}/reset-password", token="",
                         json={"token": form.get("token", ""), "newPassword": form.get("newPassword", "")})
    if not answer.ok:
        return w.render("reset.html", status_code=answer.status, token=form.get("token", ""), error=answer.message)
    return redirect("/sign-in?reset=1")


@router.get("/account")
async def account_page(w: WebDep, saved: str = "") -> Response:
    me = await w.require_me()
    sessions = await w.must(await w.api("GET", f"{IAM}/api/sessions"))
    return w.render("account.html", me=me, sessions=sessions.get("data", []), saved=saved == "1")


@router.post("/account/profile")
async def update_profile(w: WebDep, request: Request) -> Response:
    await w.require_me()
    form = await form_data(request)
    await w.must(await w.api("PATCH", f"{AUTH}/profile", json={"name": form.get("name", "")}))
    return redirect("/account?saved=1", request)


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(w: WebDep, request: Request, session_id: str) -> Response:
    await w.require_me()
    await w.must(await w.api("DELETE", f"{IAM}/api/sessions/{quote(session_id, safe='')}"))
    return redirect("/account", request)


@router.post("/account/sessions/revoke-others")
async def revoke_others(w: WebDep, request: Request) -> Response:
    await w.require_me()
    await w.must(await w.api("POST", f"{IAM}/api/sessions/revoke-others", json={}))
    return redirect("/account", request)


@router.get("/activate")
async def activate(w: WebDep, user_code: str = "") -> Response:
    """The CLI's device flow in the Portal's look: a signed-in browser goes on to IAM's approval
    page (same route and behaviour as before); otherwise sign in, sign up or get a magic link first."""
    code = user_code.strip()[:32]
    if await w.me() is not None:
        return redirect(_device_page(code))
    return w.render("activate.html", next=_device_page(code), user_code=code)
