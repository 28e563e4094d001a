"""Invitations to a platform: how a platform-admin (or an NNO operator) brings a person into
`platform_members` without NNO's service key.

- Creating one needs the right to manage the platform's members: a platform-admin of that platform
  (a `platform_members` row) or an NNO operator/service. The invited role is at most the inviter's
  own (`user` < `platform-admin`), so a plain member invites nobody.
- The invitee gets a mail with an accept link to the Portal; the link's token is stored only as its
  digest and expires after 7 days.
- Accepting needs a signed-in account whose address is the invited one and is proven (a magic link
  or a password reset: `emailVerified`), as for organization invitations: an account merely signed
  up with the address proves nothing. The invitation is claimed in one conditional UPDATE, so a
  token makes one member, once; expired, cancelled or used tokens get a clear 4xx.
- Others never learn whether an invitation of another platform exists (404). Every act is audited.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import audit
from nno.iam.access import PLATFORM_ROLE_RANK, platform_manager_rank
from nno.iam.caller import Caller, current_session
from nno.iam.context import IAMContext
from nno.iam.mailer import OutgoingMail
from nno.iam.models import PlatformInvitation, PlatformMember, User
from nno.iam.schemas import PlatformInviteBody
from nno.iam.security import new_secret
from nno.iam.sessions import lock_user, session_is_live
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id, token_hash

KIND = "platform_invitation"
TTL_MS = 7 * 24 * 3600 * 1000
# The Portal page the mail links to (served on the gateway's host).
ACCEPT_PATH = "/invitations/accept"


def view(inv: PlatformInvitation, now: int | None = None) -> dict[str, Any]:
    status = inv.status
    if status == "pending" and inv.expires_at <= (now if now is not None else now_ms()):
        status = "expired"
    return {"id": inv.id, "platformId": inv.platform_id, "email": inv.email, "role": inv.role, "status": status,
            "inviterId": inv.inviter_id, "expiresAt": inv.expires_at, "acceptedBy": inv.accepted_by,
            "createdAt": inv.created_at, "updatedAt": inv.updated_at}


def accept_link(ctx: IAMContext, token: str) -> str:
    return f"{ctx.settings.public_url.rstrip('/')}{ACCEPT_PATH}?token={quote(token, safe='')}"


def not_found() -> NNOError:
    return NNOError(404, "INVITATION_NOT_FOUND", "Invitation not found")


async def _require_manager(s: AsyncSession, caller: Caller, platform_id: str) -> int:
    rank = await platform_manager_rank(s, caller, platform_id)
    if rank is None:
        raise NNOError(403, "FORBIDDEN", "Only a platform-admin of this platform (or an NNO operator) may "
                                         "manage its invitations", {"platformId": platform_id})
    return rank


async def create(ctx: IAMContext, caller: Caller, body: PlatformInviteBody) -> dict[str, Any]:
    mail: OutgoingMail
    async with ctx.db.session() as s:
        rank = await _require_manager(s, caller, body.platformId)
        if PLATFORM_ROLE_RANK[body.role] > rank:
            raise NNOError(403, "ROLE_ABOVE_YOUR_OWN", "You may not invite someone to a role above your own",
                           {"field": "role"})
        user_id = (await s.execute(select(User.id).where(User.email == body.email))).scalar_one_or_none()
        if user_id is not None and await s.get(PlatformMember, (body.platformId, user_id)) is not None:
            raise NNOError(409, "ALREADY_A_MEMBER", "This person is already a member of the platform")
        now = now_ms()
        pending = (await s.execute(select(PlatformInvitation.id).where(
            PlatformInvitation.platform_id == body.platformId, PlatformInvitation.email == body.email,
            PlatformInvitation.status == "pending", PlatformInvitation.expires_at > now))).scalars().first()
        if pending is not None:
            raise NNOError(409, "ALREADY_INVITED", "This person already has a pending invitation; cancel it to "
                                                   "send a new one", {"invitationId": pending})
        token, digest = new_secret()
        inv = PlatformInvitation(id=new_id(), platform_id=body.platformId, email=body.email, role=body.role,
                                 status="pending", token_hash=digest, inviter_id=caller.actor_id or "service",
                                 expires_at=now + TTL_MS, accepted_by=None, created_at=now, updated_at=now)
        s.add(inv)
        link = accept_link(ctx, token)
        mail = ctx.mailer.enqueue(
            s, kind=KIND, to=body.email, subject=f"You are invited to platform {body.platformId} on NNO",
            body=f"You have been invited to platform {body.platformId} as {body.role}.\n\n"
                 f"Sign in with this address and accept (valid for 7 days):\n\n{link}\n\n"
                 "If you did not expect this, ignore this message.", secrets=[token])
        audit.record(s, caller, "platform_invitation.create", platform_id=body.platformId,
                     target_type="platform_invitation", target_id=inv.id,
                     data={"email": body.email, "role": body.role})
    await ctx.mailer.deliver(mail)
    return view(inv, now)


async def list_pending(ctx: IAMContext, caller: Caller, platform_id: str | None) -> list[dict[str, Any]]:
    """A platform's pending invitations (its managers), or without `platform_id` the caller's own."""
    now = now_ms()
    async with ctx.db.session() as s:
        q = select(PlatformInvitation).where(PlatformInvitation.status == "pending",
                                             PlatformInvitation.expires_at > now)
        if platform_id is not None:
            await _require_manager(s, caller, platform_id)
            q = q.where(PlatformInvitation.platform_id == platform_id)
        else:
            q = q.where(PlatformInvitation.email == await _proven_email(s, caller))
        rows = (await s.execute(q.order_by(PlatformInvitation.created_at.desc(), PlatformInvitation.id))
                ).scalars().all()
    return [view(i, now) for i in rows]


async def cancel(ctx: IAMContext, caller: Caller, invitation_id: str) -> dict[str, Any]:
    async with ctx.db.session() as s:
        inv = await s.get(PlatformInvitation, invitation_id)
        if inv is None or await platform_manager_rank(s, caller, inv.platform_id) is None:
            raise not_found()
        if inv.status != "pending":
            raise NNOError(409, "INVITATION_NOT_PENDING", f"This invitation is already {inv.status}",
                           {"status": inv.status})
        inv.status, inv.updated_at = "canceled", now_ms()
        audit.record(s, caller, "platform_invitation.cancel", platform_id=inv.platform_id,
                     target_type="platform_invitation", target_id=inv.id, data={"email": inv.email})
    return view(inv)


async def _proven_email(s: AsyncSession, caller: Caller) -> str:
    """The caller's address, once proven: invitations are addressed to it."""
    user = await s.get(User, caller.user_id) if caller.kind == "user" and caller.user_id else None
    if user is None:
        raise NNOError(401, "UNAUTHORIZED", "A signed-in user session is required")
    if not user.email_verified:
        raise NNOError(403, "EMAIL_NOT_VERIFIED",
                       f"Prove that {user.email} is yours before using its invitations: sign in with a magic "
                       "link sent to it, then try again", {"email": user.email})
    return user.email


async def _for_invitee(s: AsyncSession, caller: Caller, token: str) -> PlatformInvitation:
    """The token's invitation, if it is addressed to the caller's proven address (else 404, so a
    token reveals nothing to anyone else)."""
    email = await _proven_email(s, caller)
    inv = (await s.execute(select(PlatformInvitation).where(
        PlatformInvitation.token_hash == token_hash(token)))).scalar_one_or_none()
    if inv is None or inv.email != email:
        raise not_found()
    return inv


def _check_pending(inv: PlatformInvitation, now: int) -> None:
    if inv.status != "pending":
        raise NNOError(409, "INVITATION_NOT_PENDING", f"This invitation is already {inv.status}",
                       {"status": inv.status})
    if inv.expires_at <= now:
        raise NNOError(410, "INVITATION_EXPIRED", "This invitation has expired; ask for a new one")


async def lookup(ctx: IAMContext, caller: Caller, token: str) -> dict[str, Any]:
    """What the token invites to, for its invitee (the accept page shows it before accepting)."""
    async with ctx.db.session() as s:
        return view(await _for_invitee(s, caller, token))


async def _fail(ctx: IAMContext, caller: Caller, exc: NNOError) -> None:
    async with ctx.db.session() as s:
        audit.record(s, caller, "platform_invitation.accept", outcome="failure",
                     data={"reason": exc.code})


async def accept(ctx: IAMContext, caller: Caller, token: str) -> dict[str, Any]:
    try:
        return await _accept(ctx, caller, token)
    except NNOError as exc:
        await _fail(ctx, caller, exc)
        raise


async def _accept(ctx: IAMContext, caller: Caller, token: str) -> dict[str, Any]:
    session = await current_session(ctx, caller)
    now = now_ms()
    async with ctx.db.session() as s:
        # Accepting outlives the session: only from one still live once the account is held (the
        # gateway may vouch for a session revoked in the last seconds, such as a squatter's).
        if (caller.user_id is None or session is None or await lock_user(s, caller.user_id) is None
                or not await session_is_live(s, session.id)):
            raise NNOError(401, "UNAUTHORIZED", "A valid session token is required")
        inv = await _for_invitee(s, caller, token)
        _check_pending(inv, now)
        if await s.get(PlatformMember, (inv.platform_id, caller.user_id)) is not None:
            raise NNOError(409, "ALREADY_A_MEMBER", "You are already a member of this platform")
        claimed = await s.execute(
            update(PlatformInvitation).where(PlatformInvitation.id == inv.id, PlatformInvitation.status == "pending",
                                             PlatformInvitation.expires_at > now)
            .values(status="accepted", accepted_by=caller.user_id, updated_at=now)
            .execution_options(synchronize_session=False))
        if getattr(claimed, "rowcount", 0) != 1:
            raise NNOError(409, "INVITATION_NOT_PENDING", "This invitation was just used or cancelled")
        member = PlatformMember(platform_id=inv.platform_id, user_id=caller.user_id, role=inv.role, created_at=now)
        s.add(member)
        audit.record(s, caller, "platform_invitation.accept", platform_id=inv.platform_id,
                     target_type="platform_invitation", target_id=inv.id,
                     data={"role": inv.role, "email": inv.email})
        audit.record(s, caller, "platform_member.upsert", platform_id=inv.platform_id, target_type="user",
                     target_id=caller.user_id, data={"role": inv.role, "created": True, "via": "invitation",
                                                     "invitationId": inv.id})
        await s.refresh(inv)
    return {"invitation": view(inv, now),
            "member": {"platformId": member.platform_id, "userId": member.user_id, "role": member.role,
                       "createdAt": member.created_at}}
