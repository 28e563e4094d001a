"""Accounts: email/password sign-up and sign-in, magic links, profile and password changes.

Only a link mailed to the address proves that someone holds it (a magic link, or a password-reset
link: `nno.iam.password_reset`): a password sign-up does not (its account's `emailVerified` stays
false). Whoever signed up with a password first may not be the address's owner, so the first time
the address is proven by such a link, every credential set up for the account until then (its
sessions, its password, its API keys, device logins approved but not yet collected) is revoked,
audited as `user.unproven_credentials_revoked`: the account goes to whoever proved the address, and
a squatter keeps nothing. A person who signed up with a password and then
signs in by magic link for the first time therefore loses that password (and those sessions and
keys) too; from then on they sign in by magic link, or set a new password by password reset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import audit, platform_roles, throttle
from nno.iam.caller import Caller
from nno.iam.context import MAGIC_LINK_TTL_MS, IAMContext
from nno.iam.models import ApiKey, DeviceCode, Session, User, Verification
from nno.iam.schemas import ChangePasswordBody, MagicLinkBody, ProfileUpdate, SignInBody, SignUpBody
from nno.iam.security import check_password_policy, hash_password, needs_rehash, new_secret, verify_password
from nno.iam.sessions import create_session, lock_user, revoke_user_sessions, session_is_live
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id, token_hash

# Better Auth's default for the magic-link endpoint: 5 links per address a minute.
MAGIC_LINK_MAX_PER_WINDOW = 5
MAGIC_LINK_WINDOW_MS = 60_000


@dataclass
class SignedIn:
    token: str
    session: Session
    user: User


def new_user(email: str, name: str, password_hash: str | None, *, image: str | None = None,
             verified: bool = False) -> User:
    now = now_ms()
    return User(id=new_id(), email=email, name=name, image=image, email_verified=verified,
                password_hash=password_hash, role="user", created_at=now, updated_at=now)


async def sign_up(ctx: IAMContext, body: SignUpBody, caller: Caller) -> SignedIn:
    check_password_policy(body.password, body.email)
    pw_hash = hash_password(body.password)
    try:
        async with ctx.db.session() as s:
            if (await s.execute(select(User.id).where(User.email == body.email))).first():
                raise NNOError(409, "USER_ALREADY_EXISTS", "An account with this email already exists")
            user = new_user(body.email, body.name, pw_hash, image=body.image)
            s.add(user)
            await s.flush()
            token, row = create_session(s, user.id, method="password", persistent=body.rememberMe,
                                        ip=caller.ip, user_agent=caller.user_agent)
            audit.record(s, caller, "auth.sign_up", actor_id=user.id, target_type="user", target_id=user.id)
            audit.record(s, caller, "session.create", actor_id=user.id, target_type="session", target_id=row.id,
                         data={"method": "password"})
    except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
        raise NNOError(409, "USER_ALREADY_EXISTS", "An account with this email already exists") from exc
    return SignedIn(token, row, user)


async def sign_in(ctx: IAMContext, body: SignInBody, caller: Caller) -> SignedIn:
    keys = throttle.keys_for(body.email, caller.ip)
    await throttle.check_locked(ctx.db, keys)
    async with ctx.db.session() as s:
        user = (await s.execute(select(User).where(User.email == body.email))).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, body.password)
    if not ok or user is None:
        await throttle.record_failure(ctx.db, keys)
        async with ctx.db.session() as s:
            audit.record(s, caller, "auth.sign_in", outcome="failure", actor_id=user.id if user else None,
                         target_type="user", target_id=user.id if user else None,
                         data={"email": body.email, "reason": "invalid_credentials"})
        raise NNOError(401, "INVALID_CREDENTIALS", "Invalid email or password")
    await throttle.clear(ctx.db, body.email)
    upgraded = hash_password(body.password) if user.password_hash and needs_rehash(user.password_hash) else None
    async with ctx.db.session() as s:
        # The password was checked outside this transaction (hashing is slow): it must still be the
        # account's, or a revocation (`revoke_unproven_credentials`) came in between.
        stored = await lock_user(s, user.id)
        if stored is not None and stored.password_hash == user.password_hash:
            if upgraded is not None:
                stored.password_hash = upgraded
            token, row = create_session(s, user.id, method="password", persistent=body.rememberMe,
                                        ip=caller.ip, user_agent=caller.user_agent)
            audit.record(s, caller, "auth.sign_in", actor_id=user.id, target_type="session", target_id=row.id,
                         data={"method": "password"})
            return SignedIn(token, row, stored)
    async with ctx.db.session() as s:
        audit.record(s, caller, "auth.sign_in", outcome="failure", actor_id=user.id, target_type="user",
                     target_id=user.id, data={"email": body.email, "reason": "credentials_changed"})
    raise NNOError(401, "INVALID_CREDENTIALS", "Invalid email or password")


async def check_mailed_link_rate(s: AsyncSession, kind: str, email: str, now: int, what: str) -> None:
    """At most MAGIC_LINK_MAX_PER_WINDOW one-time links of `kind` mailed to an address a minute,
    counted from the `verifications` rows themselves (every request stores one, known address or not)."""
    recent = (await s.execute(select(func.count()).select_from(Verification).where(
        Verification.kind == kind, Verification.identifier == email,
        Verification.created_at > now - MAGIC_LINK_WINDOW_MS))).scalar_one()
    if recent >= MAGIC_LINK_MAX_PER_WINDOW:
        raise NNOError(429, "TOO_MANY_REQUESTS", f"{what}; wait a minute",
                       {"retryAfter": MAGIC_LINK_WINDOW_MS // 1000},
                       headers={"Retry-After": str(MAGIC_LINK_WINDOW_MS // 1000)})


def magic_link_url(ctx: IAMContext, token: str, callback: str | None) -> str:
    url = f"{ctx.public_base}/api/auth/magic-link/verify?token={quote(token)}"
    if callback:
        url += f"&callbackURL={quote(callback, safe='')}"
    return url


async def request_magic_link(ctx: IAMContext, body: MagicLinkBody, caller: Caller, callback: str | None) -> None:
    """Always answers the same way; the mail goes out whether or not the account exists yet (the link
    signs up a new user), so the response reveals nothing about registered emails. `callback` is
    `callbackURL` already checked by the caller (`safe_redirect`)."""
    token, digest = new_secret()
    now = now_ms()
    async with ctx.db.session() as s:
        await check_mailed_link_rate(s, "magic_link", body.email, now, "Too many sign-in links asked for")
        s.add(Verification(id=new_id(), kind="magic_link", identifier=body.email, token_hash=digest,
                           expires_at=now + MAGIC_LINK_TTL_MS, data={"name": body.name or ""}, created_at=now))
        link = magic_link_url(ctx, token, callback)
        mail = ctx.mailer.enqueue(
            s, kind="magic_link", to=body.email, subject="Your NNO sign-in link",
            body=f"Sign in to NNO by opening this link (valid for 5 minutes):\n\n{link}\n\n"
                 "If you did not ask for it, ignore this message.", secrets=[token])
        audit.record(s, caller, "auth.magic_link_requested", data={"email": body.email})
    await ctx.mailer.deliver(mail)


async def deny_uncollected_device_logins(s: AsyncSession, user_id: str) -> int:
    """Device logins approved by the account but not yet collected: they would become sessions later."""
    result = await s.execute(update(DeviceCode).where(DeviceCode.user_id == user_id, DeviceCode.status == "approved")
                             .values(status="denied").execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def revoke_unproven_credentials(s: AsyncSession, ctx: IAMContext, caller: Caller, user: User, *,
                                      via: str = "magic-link") -> None:
    """`user`'s address has just been proven for the first time (a magic link, or a password-reset
    link: `via`): mark it verified and revoke what was set up for the account while it was not, by
    whoever signed up with the address (see the module docstring). Call with the account locked
    (`lock_user`), in the transaction that signs the prover in (or sets their new password); the new
    credential is created after this."""
    now = now_ms()
    had_password = user.password_hash is not None
    user.password_hash, user.email_verified, user.updated_at = None, True, now
    devices = await deny_uncollected_device_logins(s, user.id)
    keys = await s.execute(update(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                           .values(revoked_at=now).execution_options(synchronize_session=False))
    sessions = await revoke_user_sessions(s, user.id)
    # Recorded as the act of the user who has just proved the address.
    audit.record(s, replace(caller, kind="user", user_id=user.id), "user.unproven_credentials_revoked",
                 platform_id=ctx.platform_id, target_type="user", target_id=user.id,
                 data={"via": via, "sessions": sessions, "password": had_password,
                       "apiKeys": int(getattr(keys, "rowcount", 0) or 0), "deviceCodes": devices})


async def verify_magic_link(ctx: IAMContext, token: str, caller: Caller) -> SignedIn:
    digest = token_hash(token)
    now = now_ms()
    failure: str | None = None
    async with ctx.db.session() as s:
        # Claim the link in one conditional UPDATE: of two requests presenting it at once, the second
        # waits for the first (a row lock on PostgreSQL, the write lock on SQLite) and then matches no
        # row, so a link signs in once. Being this transaction's first write, it also makes every read
        # below current on SQLite.
        claimed = await s.execute(
            update(Verification).where(Verification.token_hash == digest, Verification.kind == "magic_link",
                                       Verification.used_at.is_(None), Verification.expires_at > now)
            .values(used_at=now).execution_options(synchronize_session=False))
        row = (await s.execute(select(Verification).where(
            Verification.token_hash == digest, Verification.kind == "magic_link"))).scalar_one_or_none()
        if getattr(claimed, "rowcount", 0) != 1 or row is None:
            failure = "unknown" if row is None else "used" if row.used_at is not None else "expired"
        else:
            if ctx.platform_id is not None:
                # Lock order: the address's admin-grant lock before the account's row (as an admin invite).
                await platform_roles.serialize_grants(s, ctx, row.identifier)
            found = (await s.execute(select(User.id).where(User.email == row.identifier))).scalar_one_or_none()
            user = await lock_user(s, found) if found is not None else None
            if user is None:
                name = str((row.data or {}).get("name") or "") or row.identifier.split("@")[0]
                user = new_user(row.identifier, name, None, verified=True)
                s.add(user)
                await s.flush()
                audit.record(s, caller, "auth.sign_up", actor_id=user.id, target_type="user", target_id=user.id,
                             data={"method": "magic-link"})
            elif not user.email_verified:
                await revoke_unproven_credentials(s, ctx, caller, user)
            await platform_roles.consume_grant(s, ctx, caller, user)
            session_token, session = create_session(s, user.id, method="magic-link", ip=caller.ip,
                                                    user_agent=caller.user_agent)
            audit.record(s, caller, "auth.sign_in", actor_id=user.id, target_type="session", target_id=session.id,
                         data={"method": "magic-link"})
            return SignedIn(session_token, session, user)
    async with ctx.db.session() as s:
        audit.record(s, caller, "auth.magic_link_verify", outcome="failure", data={"reason": failure})
    if failure == "expired":
        raise NNOError(410, "TOKEN_EXPIRED", "This sign-in link has expired; ask for a new one")
    raise NNOError(401, "INVALID_TOKEN", "This sign-in link is not valid or was already used")


async def get_user(ctx: IAMContext, user_id: str) -> User:
    async with ctx.db.session() as s:
        user = await s.get(User, user_id)
    if user is None:
        raise NNOError(401, "UNAUTHORIZED", "The account no longer exists")
    return user


async def update_profile(ctx: IAMContext, caller: Caller, body: ProfileUpdate) -> User:
    assert caller.user_id
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise NNOError(400, "VALIDATION_ERROR", "name cannot be null", {"field": "name"})
    async with ctx.db.session() as s:
        user = await s.get(User, caller.user_id)
        if user is None:
            raise NNOError(401, "UNAUTHORIZED", "The account no longer exists")
        for key, value in changes.items():
            setattr(user, key, value)
        user.updated_at = now_ms()
        audit.record(s, caller, "user.update", target_type="user", target_id=user.id,
                     data={"fields": sorted(changes)})
    return user


async def change_password(ctx: IAMContext, caller: Caller, body: ChangePasswordBody) -> User:
    assert caller.user_id
    user = await get_user(ctx, caller.user_id)
    keys = throttle.keys_for(user.email, caller.ip)
    await throttle.check_locked(ctx.db, keys)
    if not verify_password(user.password_hash, body.currentPassword):
        await throttle.record_failure(ctx.db, keys)
        async with ctx.db.session() as s:
            audit.record(s, caller, "user.change_password", outcome="failure", target_type="user",
                         target_id=user.id)
        raise NNOError(401, "INVALID_CREDENTIALS", "The current password is not correct")
    check_password_policy(body.newPassword, user.email)
    new_hash = hash_password(body.newPassword)
    async with ctx.db.session() as s:
        # As at sign-in: the current password must still be the account's, and the session still live,
        # now that this transaction holds the account (a revocation may have come in between).
        row = await lock_user(s, user.id)
        if row is not None and row.password_hash == user.password_hash and (
                caller.session is None or await session_is_live(s, caller.session.id)):
            row.password_hash, row.updated_at = new_hash, now_ms()
            if body.revokeOtherSessions:
                await revoke_user_sessions(s, user.id, except_id=caller.session.id if caller.session else None)
            audit.record(s, caller, "user.change_password", target_type="user", target_id=user.id,
                         data={"revokedOtherSessions": body.revokeOtherSessions})
            return row
    raise NNOError(401, "INVALID_CREDENTIALS", "The current password is not correct")
