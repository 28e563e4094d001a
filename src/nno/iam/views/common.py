"""Helpers shared by the IAM routers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.responses import Response

from nno.iam.context import SESSION_COOKIE, IAMContext
from nno.iam.models import Session
from nno.kernel.redirects import same_origin_target


def set_session_cookie(response: Response, ctx: IAMContext, token: str, session: Session) -> None:
    max_age = None
    if session.persistent:
        max_age = max(0, (session.expires_at - session.created_at) // 1000)
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=ctx.secure_cookies, domain=ctx.cookie_domain)
    # Better Auth's bearer plugin: wherever the session cookie is set, the token is also a header a
    # non-browser client (or a cross-origin page) can read.
    response.headers["set-auth-token"] = token
    exposed = [h.strip() for h in response.headers.get("access-control-expose-headers", "").split(",") if h.strip()]
    response.headers["access-control-expose-headers"] = ", ".join([*exposed, "set-auth-token"])


def clear_session_cookie(response: Response, ctx: IAMContext) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=ctx.secure_cookies,
                           domain=ctx.cookie_domain)


def safe_redirect(ctx: IAMContext, target: str | None) -> str | None:
    """`target` as the absolute URL a browser would reach, if that stays on this app's own origin, or
    on another app of its platform (the console shell, under the cookie's domain); None otherwise
    (never an open redirect). Every redirect parameter of every flow goes through it."""
    return same_origin_target(target, ctx.public_base or ctx.settings.public_url, site_domain=ctx.cookie_domain)


async def form_or_json(request: Request) -> dict[str, Any]:
    """Bodies that may come as a form (OAuth clients) or as JSON."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {"__invalid__": True}
    return data if isinstance(data, dict) else {"__invalid__": True}


# OpenAPI for routes that answer 201 when they create and 200 when the thing already stood.
ALREADY_SO: dict[int | str, dict[str, Any]] = {200: {"description": "Already so: nothing changed"}}
