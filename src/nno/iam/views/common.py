"""Helpers shared by the IAM routers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from starlette.responses import Response

from nno.iam.context import SESSION_COOKIE, IAMContext
from nno.iam.models import Session


def set_session_cookie(response: Response, ctx: IAMContext, token: str, session: Session) -> None:
    max_age = None
    if session.persistent:
        max_age = max(0, (session.expires_at - session.created_at) // 1000)
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=ctx.secure_cookies, domain=ctx.cookie_domain)


def clear_session_cookie(response: Response, ctx: IAMContext) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=ctx.secure_cookies,
                           domain=ctx.cookie_domain)


def safe_redirect(ctx: IAMContext, target: str | None) -> str | None:
    """Only local paths or this installation's own origin: never an open redirect."""
    if not target:
        return None
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    own = urlsplit(ctx.public_base or ctx.settings.public_url)
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and (parts.scheme, parts.netloc) == (own.scheme, own.netloc):
        return target
    host = parts.hostname or ""
    if ctx.cookie_domain and parts.scheme in ("http", "https") and parts.username is None and (
            host == ctx.cookie_domain.lstrip(".") or host.endswith("." + ctx.cookie_domain.lstrip("."))):
        return target  # another app of this platform (its console shell), which shares the cookie
    return None


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
