"""Programmatic API keys (DECISIONS 4): `nno_` + 43 URL-safe characters, shown once, stored as a
SHA-256 digest with a display prefix. A key belongs to a platform and carries permissions.

A key never outranks its maker (docs/security.md): `validate` answers with the role its maker holds
on the key's platform at that moment (`platform-admin` or `user`; an operator's or a service's key
acts as `platform-admin` of its one platform, never as an operator), and refuses the key once its
maker is no longer a member of that platform. The gateway forwards that role; `nno.kernel.scopes`
applies the key's permissions on top."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import audit
from nno.iam.access import is_platform_admin, is_privileged, platform_role
from nno.iam.caller import Caller, current_session
from nno.iam.context import IAMContext
from nno.iam.models import ApiKey, PlatformMember, User
from nno.iam.schemas import ApiKeyCreateBody
from nno.iam.security import API_KEY_RE, new_api_key
from nno.iam.sessions import is_operator, lock_user, session_is_live
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, ROLE_USER
from nno.kernel.ids import new_id, token_hash
from nno.kernel.platform_status import check_not_suspended

LAST_USED_RESOLUTION_MS = 60_000


def key_view(k: ApiKey) -> dict[str, Any]:
    return {"id": k.id, "name": k.name, "start": k.start, "prefix": "nno_", "platformId": k.platform_id,
            "userId": k.user_id, "permissions": list(k.permissions or []), "createdAt": k.created_at,
            "lastUsedAt": k.last_used_at, "expiresAt": k.expires_at, "revokedAt": k.revoked_at,
            "enabled": k.revoked_at is None}


async def create(ctx: IAMContext, caller: Caller, body: ApiKeyCreateBody) -> dict[str, Any]:
    now = now_ms()
    if body.expiresAt is not None and body.expiresIn is not None:
        raise NNOError(400, "VALIDATION_ERROR", "Give expiresAt or expiresIn, not both")
    expires_at = body.expiresAt if body.expiresAt is not None else (
        now + body.expiresIn * 1000 if body.expiresIn is not None else None)
    if expires_at is not None and expires_at <= now:
        raise NNOError(422, "INVALID_EXPIRY", "expiresAt must be in the future", {"field": "expiresAt"})
    # The key belongs to the session's active platform unless one is named.
    session = await current_session(ctx, caller) if caller.kind == "user" else None
    # The platform's status is read before the transaction: it may ask the Registry.
    target = body.platformId or (session.active_platform_id if session is not None else None)
    status = await ctx.platform_status(target) if target else None
    async with ctx.db.session() as s:
        platform_id = body.platformId
        if caller.kind == "user":
            # A key outlives the session that made it: only from a session still live once the account
            # is held (the gateway may still vouch for one revoked in the last seconds).
            assert caller.user_id
            if session is None or await lock_user(s, caller.user_id) is None or not await session_is_live(
                    s, session.id):
                raise NNOError(401, "UNAUTHORIZED", "A valid session token is required")
            platform_id = platform_id or session.active_platform_id
            if not platform_id:
                raise NNOError(400, "VALIDATION_ERROR", "platformId is required", {"field": "platformId"})
            if not await is_privileged(s, caller) and await platform_role(s, caller.user_id, platform_id) is None:
                raise NNOError(403, "NOT_A_PLATFORM_MEMBER", "You are not a member of this platform")
        elif caller.is_service:
            if not platform_id:
                raise NNOError(400, "VALIDATION_ERROR", "platformId is required", {"field": "platformId"})
        else:
            raise NNOError(403, "FORBIDDEN", "API keys are created by signed-in users or services")
        check_not_suspended(platform_id, status, privileged=await is_privileged(s, caller),
                            operation="create an API key")
        key, digest, start = new_api_key()
        row = ApiKey(id=new_id(), name=body.name, start=start, key_hash=digest, platform_id=platform_id,
                     user_id=caller.user_id, permissions=list(dict.fromkeys(body.permissions)),
                     expires_at=expires_at, created_at=now)
        s.add(row)
        audit.record(s, caller, "apikey.create", platform_id=platform_id, target_type="apikey", target_id=row.id,
                     data={"name": body.name, "permissions": row.permissions})
    return {**key_view(row), "key": key}


async def list_keys(ctx: IAMContext, caller: Caller, platform_id: str | None) -> list[dict[str, Any]]:
    async with ctx.db.session() as s:
        q = select(ApiKey)
        if platform_id:
            q = q.where(ApiKey.platform_id == platform_id)
        if not await is_privileged(s, caller):
            if caller.kind != "user":
                raise NNOError(403, "FORBIDDEN", "API keys are listed by signed-in users or services")
            admin_of = select(PlatformMember.platform_id).where(
                PlatformMember.user_id == caller.user_id, PlatformMember.role == ROLE_PLATFORM_ADMIN)
            q = q.where(or_(ApiKey.user_id == caller.user_id, ApiKey.platform_id.in_(admin_of)))
        rows = (await s.execute(q.order_by(ApiKey.created_at.desc(), ApiKey.id))).scalars().all()
    return [key_view(k) for k in rows]


async def current(ctx: IAMContext, caller: Caller) -> dict[str, Any]:
    """The key the caller authenticated with: how a script (or `nno whoami`) learns what it holds."""
    if caller.kind != "apikey" or not caller.key_id:
        raise NNOError(400, "NOT_AN_API_KEY", "Only a request made with an API key has a current API key")
    async with ctx.db.session() as s:
        row = await s.get(ApiKey, caller.key_id)
    if row is None:
        raise NNOError(404, "API_KEY_NOT_FOUND", "API key not found", {"keyId": caller.key_id})
    return key_view(row)


async def revoke(ctx: IAMContext, caller: Caller, key_id: str) -> dict[str, Any]:
    async with ctx.db.session() as s:
        row = await s.get(ApiKey, key_id)
        allowed = row is not None and (
            await is_privileged(s, caller)
            or (caller.kind == "user" and row.user_id == caller.user_id)
            or (caller.kind == "user" and await is_platform_admin(s, caller, row.platform_id)))
        if row is None or not allowed:
            raise NNOError(404, "API_KEY_NOT_FOUND", "API key not found", {"keyId": key_id})
        if row.revoked_at is not None:
            raise NNOError(409, "API_KEY_REVOKED", "This API key is already revoked", {"keyId": key_id})
        row.revoked_at = now_ms()
        audit.record(s, caller, "apikey.revoke", platform_id=row.platform_id, target_type="apikey",
                     target_id=row.id)
    return key_view(row)


async def maker_role(s: AsyncSession, row: ApiKey) -> str | None:
    """The role the key acts as on its platform: its maker's, read now, so a demotion or removal
    takes effect at the next validation. None when the maker no longer belongs to the platform."""
    if row.user_id is None:
        return ROLE_PLATFORM_ADMIN  # made by an NNO service for this platform
    if await s.get(User, row.user_id) is None:
        return None
    if await is_operator(s, row.user_id):
        return ROLE_PLATFORM_ADMIN
    role = await platform_role(s, row.user_id, row.platform_id)
    if role is None:
        return None
    return ROLE_PLATFORM_ADMIN if role == ROLE_PLATFORM_ADMIN else ROLE_USER


async def validate(ctx: IAMContext, caller: Caller, key: str) -> dict[str, Any]:
    now = now_ms()
    reason = "malformed"
    if API_KEY_RE.fullmatch(key):
        async with ctx.db.session() as s:
            row = (await s.execute(select(ApiKey).where(ApiKey.key_hash == token_hash(key)))).scalar_one_or_none()
            if row is None:
                reason = "unknown"
            elif row.revoked_at is not None:
                reason = "revoked"
            elif row.expires_at is not None and row.expires_at <= now:
                reason = "expired"
            elif (role := await maker_role(s, row)) is None:
                reason = "maker_not_member"
            else:
                # Coarse last-use tracking: at most one write a minute per key, not one per request.
                if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION_MS:
                    row.last_used_at = now
                return {"keyId": row.id, "platformId": row.platform_id, "userId": row.user_id, "role": role,
                        "permissions": list(row.permissions or []), "name": row.name, "expiresAt": row.expires_at}
    async with ctx.db.session() as s:
        audit.record(s, caller, "apikey.validate", outcome="failure", data={"reason": reason})
    raise NNOError(401, "INVALID_API_KEY", "The API key is not valid")
