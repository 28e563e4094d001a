"""Forgotten passwords, with Better Auth's routes and shapes: `POST /api/auth/request-password-reset`
(older name `/api/auth/forget-password`) mails a single-use link, `POST /api/auth/reset-password` sets
the new password with its token.

- Asking answers the same whether or not an account has the address (no enumeration): a request for
  an unknown address stores a `verifications` row too (whose token nobody ever gets), so the
  per-address limit of magic links (`accounts.check_mailed_link_rate`) applies the same way; only
  the mail differs, and it is delivered after the response is sent.
- A link is valid for an hour, is stored only as a digest, works once, and a newer request retires
  the address's older links.
- A reset proves the mailbox as a magic link does: if the account's address was unproven, whatever
  was set up for it until then is revoked first (`accounts.revoke_unproven_credentials`, the one code
  path), then the new password is set and the address is marked verified. Every session of the
  account is revoked either way (Better Auth's `revokeSessionsOnPasswordReset`), and so are device
  logins approved but not yet collected (they would become sessions); API keys of a proven account
  stay. A reset does not sign in: the user signs in with the new password.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal
from urllib.parse import quote

from sqlalchemy import select, update

from nno.iam import audit, platform_roles, throttle
from nno.iam.accounts import check_mailed_link_rate, deny_uncollected_device_logins, revoke_unproven_credentials
from nno.iam.caller import Caller
from nno.iam.context import IAMContext
from nno.iam.mailer import OutgoingMail
from nno.iam.models import User, Verification
from nno.iam.schemas import RequestPasswordResetBody
from nno.iam.security import check_password_policy, hash_password, new_secret
from nno.iam.sessions import lock_user, revoke_user_sessions
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id, token_hash

KIND = "password_reset"
# Better Auth's `resetPasswordTokenExpiresIn` default.
RESET_TTL_MS = 3600 * 1000
# Better Auth answers this whether or not the address has an account.
REQUESTED_MESSAGE = "If this email exists in our system, check your email for the reset link"
TOKEN_MAX = 512

TokenProblem = Literal["missing", "unknown", "used", "expired"]


def reset_link_url(ctx: IAMContext, token: str, callback: str | None) -> str:
    """The mailed link: `GET /api/auth/reset-password?token=` on this app (an exact path, so the
    gateway can list it as public), which redirects to `callback` with the token."""
    url = f"{ctx.public_base}/api/auth/reset-password?token={quote(token, safe='')}"
    if callback:
        url += f"&callbackURL={quote(callback, safe='')}"
    return url


async def request_reset(ctx: IAMContext, body: RequestPasswordResetBody, caller: Caller,
                        callback: str | None) -> OutgoingMail | None:
    """Stores a link for `body.email` and queues its mail if an account has the address; returns the
    mail to deliver after the response (None for an unknown address). `callback` is `redirectTo`
    already checked by the caller (`safe_redirect`)."""
    token, digest = new_secret()
    now = now_ms()
    mail = None
    async with ctx.db.session() as s:
        await check_mailed_link_rate(s, KIND, body.email, now, "Too many password-reset links asked for")
        user_id = (await s.execute(select(User.id).where(User.email == body.email))).scalar_one_or_none()
        # A newer link retires the older ones (they count as used).
        await s.execute(update(Verification).where(
            Verification.kind == KIND, Verification.identifier == body.email, Verification.used_at.is_(None))
            .values(used_at=now).execution_options(synchronize_session=False))
        s.add(Verification(id=new_id(), kind=KIND, identifier=body.email, token_hash=digest,
                           expires_at=now + RESET_TTL_MS, data={"userId": user_id}, created_at=now))
        if user_id is not None:
            link = reset_link_url(ctx, token, callback)
            mail = ctx.mailer.enqueue(
                s, kind=KIND, to=body.email, subject="Reset your NNO password",
                body=f"To choose a new password, open this link (valid for 1 hour):\n\n{link}\n\n"
                     f"Or send the token to POST {ctx.public_base}/api/auth/reset-password as\n"
                     f'{{"token": "{token}", "newPassword": "..."}}\n\n'
                     "Your sessions will be signed out. If you did not ask for this, ignore this message: "
                     "your password stays as it is.", secrets=[token])
        audit.record(s, caller, "auth.password_reset_requested", platform_id=ctx.platform_id,
                     target_type="user" if user_id else None, target_id=user_id, data={"email": body.email})
    return mail


def _problem(row: Verification | None, now: int) -> TokenProblem | None:
    if row is None or not (row.data or {}).get("userId"):
        return "unknown"
    if row.used_at is not None:
        return "used"
    if row.expires_at <= now:
        return "expired"
    return None


async def _find(ctx: IAMContext, token: str) -> Verification | None:
    async with ctx.db.session() as s:
        return (await s.execute(select(Verification).where(
            Verification.token_hash == token_hash(token), Verification.kind == KIND))).scalar_one_or_none()


def token_error(problem: TokenProblem) -> NNOError:
    if problem == "expired":
        return NNOError(400, "TOKEN_EXPIRED", "This password-reset link has expired; ask for a new one")
    if problem == "missing":
        return NNOError(400, "INVALID_TOKEN", "token is required", {"field": "token"})
    return NNOError(400, "INVALID_TOKEN", "This password-reset link is not valid, was already used, "
                                          "or was replaced by a newer one")


async def _lookup(ctx: IAMContext, token: str | None) -> tuple[Verification | None, TokenProblem | None]:
    """A reset token's row and what is wrong with it (None: it can still be used). Reads only."""
    if not token or len(token) > TOKEN_MAX:
        return None, "missing" if not token else "unknown"
    row = await _find(ctx, token)
    return row, _problem(row, now_ms())


async def check_token(ctx: IAMContext, token: str | None) -> TokenProblem | None:
    """What is wrong with a reset token (None: it can still be used). Reads only."""
    return (await _lookup(ctx, token))[1]


async def _fail(ctx: IAMContext, caller: Caller, problem: TokenProblem) -> NNOError:
    async with ctx.db.session() as s:
        audit.record(s, caller, "user.password_reset", outcome="failure", platform_id=ctx.platform_id,
                     data={"reason": problem})
    return token_error(problem)


async def reset_password(ctx: IAMContext, token: str | None, new_password: str, caller: Caller) -> None:
    row, problem = await _lookup(ctx, token)
    if problem is not None or row is None:
        raise await _fail(ctx, caller, problem or "missing")
    # Checked before the token is claimed: a refused password leaves the link usable.
    check_password_policy(new_password, row.identifier)
    new_hash = hash_password(new_password)  # slow: outside the transaction
    now = now_ms()
    async with ctx.db.session() as s:
        # Claimed in one conditional UPDATE, as a magic link: of two requests presenting the token at
        # once, one sets its password.
        claimed = await s.execute(
            update(Verification).where(Verification.id == row.id, Verification.used_at.is_(None),
                                       Verification.expires_at > now)
            .values(used_at=now).execution_options(synchronize_session=False))
        if getattr(claimed, "rowcount", 0) == 1:
            if ctx.platform_id is not None:
                # Lock order: the address's admin-grant lock before the account's row (as a magic link).
                await platform_roles.serialize_grants(s, ctx, row.identifier)
            user = await lock_user(s, str(row.data["userId"]))
            # The account may have been deleted since (and its address taken by a new one).
            if user is not None and user.email == row.identifier:
                if not user.email_verified:
                    await revoke_unproven_credentials(s, ctx, caller, user, via="password-reset")
                user.password_hash, user.updated_at = new_hash, now_ms()
                sessions = await revoke_user_sessions(s, user.id)
                devices = await deny_uncollected_device_logins(s, user.id)
                # The address is proven now: a pending admin invite applies (as at a magic-link sign-in).
                await platform_roles.consume_grant(s, ctx, caller, user)
                audit.record(s, replace(caller, kind="user", user_id=user.id), "user.password_reset",
                             platform_id=ctx.platform_id, target_type="user", target_id=user.id,
                             data={"sessionsRevoked": sessions, "deviceCodesDenied": devices})
                email = user.email
            else:
                email = None
        else:
            email = None
    if email is None:
        raise await _fail(ctx, caller, await check_token(ctx, token) or "unknown")
    # The failed sign-ins that may have led here no longer lock the account out.
    await throttle.clear(ctx.db, email)
