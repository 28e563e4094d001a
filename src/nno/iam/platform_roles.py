"""The platform-level role (`platform-admin` | `user`) of the users of a per-platform auth app.

Who may change it (the app is publicly addressable, so only credentials count, never `X-Nno-*`):
- NNO itself, with a short-lived service token (`service_tokens.mint`) whose audience is
  `platform_audience(platformId)`: a token minted for another platform, or for anything else, is
  refused. NNO mints one through `POST /api/nno/service-token {"audience": "auth:{platformId}"}`.
- a `platform-admin` of this same platform, with a session this app issued.

Nobody becomes `platform-admin` by signing up first: whoever found the host could claim it, and an
account whose address is unproven is never promoted (403 `EMAIL_NOT_VERIFIED`). Instead
NNO may seed a grant for an email (`grant_on_sign_in`, the platform owner's address at provisioning):
it is consumed the first time that address proves it owns its mailbox (magic-link sign-in), never at
a password sign-up, which proves nothing about the address. Every change is in the app's audit log.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import false, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from nno.iam import audit, service_tokens
from nno.iam.caller import Caller
from nno.iam.context import IAMContext
from nno.iam.models import User, Verification
from nno.iam.security import new_secret
from nno.iam.sessions import holds_platform_admin
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, ROLE_USER
from nno.kernel.ids import new_id

ADMIN_GRANT_KIND = "platform_admin_grant"
ROLE_CHANGE_ACTION = "user.role_change"


def platform_audience(platform_id: str) -> str:
    """The audience a service token must carry to act on this platform's auth app."""
    return f"auth:{platform_id}"


def looks_like_service_token(token: str) -> bool:
    """Service tokens are JWTs (three dot-separated parts); session tokens are opaque url-safe strings
    with no dots."""
    return token.count(".") == 2


def check_service_token(ctx: IAMContext, token: str) -> dict[str, Any]:
    """The claims of a valid NNO service token meant for this platform. 401 for a token that is not
    one (bad signature, expired, not a service token); 403 for one minted for another audience."""
    assert ctx.platform_id is not None
    claims = service_tokens.verify(ctx.settings, token)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if platform_audience(ctx.platform_id) not in audiences:
        raise NNOError(403, "WRONG_AUDIENCE", "This service token was not issued for this platform",
                       {"expectedAudience": platform_audience(ctx.platform_id)})
    return claims


async def find_user(s: AsyncSession, user_id_or_email: str) -> User:
    """By id, or by email when the reference contains '@' (compared lower-cased, as stored)."""
    ref = user_id_or_email.strip()
    if "@" in ref:
        user = (await s.execute(select(User).where(User.email == ref.lower()))).scalar_one_or_none()
    else:
        user = await s.get(User, ref)
    if user is None:
        raise NNOError(404, "USER_NOT_FOUND", "No user with this id or email on this platform",
                       {"user": ref})
    return user


def role_view(user: User, previous: str, platform_id: str | None) -> dict[str, Any]:
    return {"userId": user.id, "email": user.email, "role": user.role, "previousRole": previous,
            "changed": user.role != previous, "platformId": platform_id}


async def _demote_unless_last_admin(s: AsyncSession, user: User, role: str) -> bool:
    """Take `user` out of platform-admin unless no other admin would be left; False if refused.

    Safe against two admins demoting each other at once: on PostgreSQL the admins' rows are locked
    first (the second transaction waits and then sees one admin left); on SQLite, where reads run
    outside the write transaction, the check sits inside the one UPDATE statement, which holds the
    write lock while it counts."""
    await s.execute(select(User.id).where(User.role == ROLE_PLATFORM_ADMIN).with_for_update())
    admins = aliased(User)
    others = (select(func.count()).select_from(admins)
              .where(admins.role == ROLE_PLATFORM_ADMIN, admins.id != user.id).scalar_subquery())
    done = await s.execute(
        update(User).where(User.id == user.id, User.role == ROLE_PLATFORM_ADMIN, others > 0)
        .values(role=role, updated_at=now_ms()).execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        return False
    await s.refresh(user)
    return True


async def set_role(ctx: IAMContext, caller: Caller, user_ref: str, role: str, *,
                   via: str, service_subject: str | None = None) -> dict[str, Any]:
    """Set a user's platform-level role; `caller` is already authorized (a service-token caller or a
    session caller whose admin role is checked here, in the same transaction as the change)."""
    if role not in (ROLE_PLATFORM_ADMIN, ROLE_USER):
        raise NNOError(400, "VALIDATION_ERROR", "role must be 'platform-admin' or 'user'", {"field": "role"})
    async with ctx.db.session() as s:
        if caller.kind == "user":
            me = await s.get(User, caller.user_id) if caller.user_id else None
            if me is None or not holds_platform_admin(me):
                raise NNOError(403, "FORBIDDEN", "Only a platform-admin of this platform may change roles")
        user = await find_user(s, user_ref)
        previous = user.role if user.role in (ROLE_PLATFORM_ADMIN, ROLE_USER) else ROLE_USER
        if previous == role:
            return role_view(user, previous, ctx.platform_id)
        if role == ROLE_PLATFORM_ADMIN and not user.email_verified:
            # Whoever signed up first with an address need not hold it: the admin would be theirs.
            raise NNOError(403, "EMAIL_NOT_VERIFIED",
                           "Only an account whose address is proven can be made platform-admin: its holder "
                           "signs in once with a magic link, or invite the address (POST /api/nno/admin-invites), "
                           "which applies at that sign-in", {"userId": user.id})
        if caller.kind == "user" and previous == ROLE_PLATFORM_ADMIN:
            # A session admin may not remove the last admin (that would need NNO to repair); NNO may.
            if not await _demote_unless_last_admin(s, user, role):
                raise NNOError(409, "LAST_PLATFORM_ADMIN",
                               "This is the platform's last platform-admin; promote another user first")
        else:
            user.role, user.updated_at = role, now_ms()
        audit.record(s, caller, ROLE_CHANGE_ACTION, actor_id=service_subject, platform_id=ctx.platform_id,
                     target_type="user", target_id=user.id,
                     data={"from": previous, "to": role, "via": via, "email": user.email})
        return role_view(user, previous, ctx.platform_id)


async def list_admins(ctx: IAMContext) -> list[dict[str, Any]]:
    async with ctx.db.session() as s:
        rows = (await s.execute(select(User).where(User.role == ROLE_PLATFORM_ADMIN)
                                .order_by(User.created_at, User.id))).scalars().all()
    return [{"userId": u.id, "email": u.email, "name": u.name, "role": u.role} for u in rows]


async def serialize_grants(s: AsyncSession, ctx: IAMContext, email: str) -> None:
    """Call first in a transaction that grants platform-admin to `email` (an admin invite) or consumes
    such a grant (a verified sign-in): such transactions then run one at a time, and each sees what
    the previous one committed. Otherwise an invite landing during the address's first sign-in reads
    the account as unverified (pending grant) while the sign-in has already looked for a grant (none):
    the grant would wait for a later sign-in. Two overlapping invites would both leave a live grant.

    PostgreSQL: a transaction-scoped advisory lock on the platform and address. SQLite: the database's
    one write lock, which a transaction's first write statement takes (even one changing no row) and
    holds to its commit, so every read after it is current."""
    if ctx.db.is_sqlite:
        await s.execute(update(Verification).where(false()).values(used_at=Verification.used_at)
                        .execution_options(synchronize_session=False))
    else:
        await s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                        {"k": f"nno-admin-grant:{ctx.platform_id}:{email}"})


async def _retire_live_grants(s: AsyncSession, email: str, now: int, *, reason: str) -> list[Verification]:
    """Mark every unused grant of the address used; returns them, newest first."""
    live = list((await s.execute(select(Verification).where(
        Verification.kind == ADMIN_GRANT_KIND, Verification.identifier == email, Verification.used_at.is_(None))
        .order_by(Verification.created_at.desc(), Verification.id))).scalars().all())
    for grant in live:
        grant.used_at = now
        grant.data = {**(grant.data or {}), "retired": reason}
    return live


async def grant_on_sign_in(ctx: IAMContext, caller: Caller, email: str, ttl_ms: int, *,
                           service_subject: str) -> dict[str, Any]:
    """Make `email` a platform-admin: at once if the account exists and its address is verified, else
    when that address first signs in by magic link (status `granted` or `pending`). The newest invite
    decides: it retires any grant still waiting for that address."""
    now = now_ms()
    async with ctx.db.session() as s:
        await serialize_grants(s, ctx, email)
        await _retire_live_grants(s, email, now, reason="superseded")
        user = (await s.execute(select(User).where(User.email == email))).scalar_one_or_none()
        if user is not None and user.email_verified:
            previous = user.role
            if previous != ROLE_PLATFORM_ADMIN:
                user.role, user.updated_at = ROLE_PLATFORM_ADMIN, now
                audit.record(s, caller, ROLE_CHANGE_ACTION, actor_id=service_subject,
                             platform_id=ctx.platform_id, target_type="user", target_id=user.id,
                             data={"from": previous, "to": ROLE_PLATFORM_ADMIN, "via": "admin-invite",
                                   "email": email})
            return {"email": email, "status": "granted", "userId": user.id, "expiresAt": None}
        _, digest = new_secret()  # the grant is looked up by email; the digest only fills the column
        grant = Verification(id=new_id(), kind=ADMIN_GRANT_KIND, identifier=email, token_hash=digest,
                             expires_at=now + ttl_ms, data={"grantedBy": service_subject}, created_at=now)
        s.add(grant)
        audit.record(s, caller, "user.admin_invite", actor_id=service_subject, platform_id=ctx.platform_id,
                     target_type="grant", target_id=grant.id, data={"email": email, "expiresAt": grant.expires_at})
        return {"email": email, "status": "pending", "userId": user.id if user else None,
                "expiresAt": grant.expires_at, "grantId": grant.id}


async def consume_grant(s: AsyncSession, ctx: IAMContext, caller: Caller, user: User) -> None:
    """At a verified sign-in on a per-platform app: apply a live admin grant for the user's email, and
    use up every grant of that address (so none is left to re-promote the user after a demotion).

    When this sign-in is the address's first proof, whatever a squatter set up for the account by
    signing up first with the address (password, sessions) was already revoked in this same
    transaction (`accounts.revoke_unproven_credentials`), so the admin account is the prover's alone."""
    if ctx.platform_id is None or not user.email_verified:
        return
    await serialize_grants(s, ctx, user.email)
    now = now_ms()
    live = await _retire_live_grants(s, user.email, now, reason="consumed")
    grant = next((g for g in live if g.expires_at > now), None)
    if grant is None or user.role == ROLE_PLATFORM_ADMIN:
        return
    signed_in = replace(caller, kind="user", user_id=user.id)
    previous, user.role, user.updated_at = user.role, ROLE_PLATFORM_ADMIN, now
    # Recorded as the user's own act (they have just proved their address), under NNO's grant.
    audit.record(s, signed_in, ROLE_CHANGE_ACTION, platform_id=ctx.platform_id,
                 target_type="user", target_id=user.id,
                 data={"from": previous, "to": ROLE_PLATFORM_ADMIN, "via": "admin-invite", "grantId": grant.id,
                       "grantedBy": (grant.data or {}).get("grantedBy"), "email": user.email})
