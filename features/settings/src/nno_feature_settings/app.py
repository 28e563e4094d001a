"""The Settings Worker. Platform settings change only by the platform's admins; a tenant's by the
organization's owners and admins (`settings:tenant-manage`). Values are checked per field."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from nno.sdk import FeatureEnv, FeatureUser, create_feature_app, render, require_tenant

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
LOCALE_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Z]{2})?$")


def _zone(value: str) -> bool:
    if value not in available_timezones():
        return False
    ZoneInfo(value)
    return True


# key -> (label, check, what a valid value looks like)
FIELDS: dict[str, tuple[str, Callable[[str], bool], str]] = {
    "displayName": ("Display name", lambda v: 0 < len(v) <= 100, "1 to 100 characters"),
    "supportEmail": ("Support email", lambda v: len(v) <= 320 and EMAIL_RE.match(v) is not None, "an email address"),
    "brandColor": ("Brand color", lambda v: COLOR_RE.match(v) is not None, "a color like #3366ff"),
    "locale": ("Locale", lambda v: LOCALE_RE.match(v) is not None, "a locale like en or en-GB"),
    "timezone": ("Time zone", _zone, "an IANA zone like Europe/Paris"),
}
Reader = Annotated[FeatureUser, Depends(require_tenant("settings:read"))]


def check(form: dict[str, str]) -> tuple[dict[str, str | None], dict[str, str]]:
    """(values to store, None = clear; errors by field) from a submitted form."""
    values: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for key, (label, ok, expected) in FIELDS.items():
        if key not in form:
            continue
        value = form[key].strip()
        if value == "":
            values[key] = None
        elif ok(value):
            values[key] = value
        else:
            errors[key] = f"{label} must be {expected}"
    return values, errors


def create_worker_app(env: FeatureEnv) -> FastAPI:
    from nno_feature_settings import definition

    app = create_feature_app(definition, env)

    async def scope_values(scope: str, org: str) -> dict[str, str]:
        rows = await env.execute("SELECT key, value FROM {{prefix}}settings WHERE scope = :s AND org_id = :o",
                                 {"s": scope, "o": org})
        return {r["key"]: r["value"] for r in rows}

    async def store(scope: str, org: str, values: dict[str, str | None], by: str) -> None:
        for key, value in values.items():
            if value is None:
                await env.execute("DELETE FROM {{prefix}}settings WHERE scope = :s AND org_id = :o AND key = :k",
                                  {"s": scope, "o": org, "k": key})
            else:
                await env.execute(
                    "INSERT INTO {{prefix}}settings (scope, org_id, key, value, updated_by, updated_at) "
                    "VALUES (:s, :o, :k, :v, :by, :at) ON CONFLICT (scope, org_id, key) "
                    "DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, "
                    "updated_at = excluded.updated_at",
                    {"s": scope, "o": org, "k": key, "v": value, "by": by, "at": int(time.time() * 1000)})

    async def page(request: Request, user: FeatureUser, errors: dict[str, str] | None = None,
                   status: int = 200, saved: str | None = None) -> Response:
        org = str(user.active_organization_id)
        platform = await scope_values("platform", "")
        tenant = await scope_values("tenant", org)
        return render(request, "settings/settings.html", {
            "fields": FIELDS, "platform": platform, "tenant": tenant, "effective": {**platform, **tenant},
            "errors": errors or {}, "saved": saved}, status_code=status)

    @app.get("/")
    async def settings_page(request: Request, user: Reader) -> Response:
        return await page(request, user)

    async def save(request: Request, user: FeatureUser, scope: str) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        values, errors = check(form)
        if errors:
            return await page(request, user, errors, 400)
        await store(scope, "" if scope == "platform" else str(user.active_organization_id), values, user.id)
        if request.headers.get("hx-request") == "true":
            return await page(request, user, saved=scope)
        return RedirectResponse("/", status_code=303)

    @app.post("/platform")
    async def save_platform(request: Request, user: Reader) -> Response:
        if not user.is_platform_admin:
            return render(request, "nno/error.html", {"status": 403, "code": "FORBIDDEN",
                                                      "message": "Only the platform's admins change its settings"},
                          status_code=403)
        return await save(request, user, "platform")

    @app.post("/tenant")
    async def save_tenant(request: Request, user: Reader) -> Response:
        if not user.can("settings:tenant-manage"):
            return render(request, "nno/error.html", {"status": 403, "code": "FORBIDDEN",
                                                      "message": "This needs the permission settings:tenant-manage"},
                          status_code=403)
        return await save(request, user, "tenant")

    @app.get("/api/settings")
    async def effective(user: Reader) -> JSONResponse:
        platform = await scope_values("platform", "")
        tenant = await scope_values("tenant", str(user.active_organization_id))
        data: dict[str, Any] = {"platform": platform, "tenant": tenant, "effective": {**platform, **tenant}}
        return JSONResponse(data)

    return app
