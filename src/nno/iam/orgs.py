"""Organizations (tenants and the NNO operator org), members and invitations, Better Auth-style:
the creator becomes `owner`; roles are owner | admin | member; invitations expire after 48 h.

An invitation is addressed to an email, so only an account that has proven it holds that address
(`emailVerified`: a magic link or a password reset) may see, accept or reject it; a password sign-up
proves nothing (403 `EMAIL_NOT_VERIFIED`).

No organization route ever adds anyone to an `nno-operator` organization (creating one, inviting,
accepting, adding a member: 403 `OPERATOR_GRANT_REQUIRED`): operators are made only by
`nno admin bootstrap` and by an operator's explicit grant (`nno.iam.operators`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import audit
from nno.iam.access import get_org, is_privileged, membership, require_org_admin, require_org_reader
from nno.iam.caller import Caller, current_session
from nno.iam.context import INVITATION_TTL_MS, IAMContext
from nno.iam.mailer import OutgoingMail
from nno.iam.models import Invitation, Member, Organization, PermissionGrant, RolePermission, Session, User
from nno.iam.schemas import (
    AddMemberBody,
    InviteBody,
    OrgCreateBody,
    RemoveMemberBody,
    UpdateMemberRoleBody,
)
from nno.iam.sessions import lock_user, session_is_live
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id

OPERATOR_ORG_TYPE = "nno-operator"


def operator_grant_required() -> NNOError:
    return NNOError(403, "OPERATOR_GRANT_REQUIRED",
                    "Operators are not made by organization routes: an operator grants it with "
                    "POST /api/nno/operators (the first one comes from `nno admin bootstrap`)")


def _no_operator_org(org: Organization) -> None:
    if org.org_type == OPERATOR_ORG_TYPE:
        raise operator_grant_required()


def org_view(o: Organization) -> dict[str, Any]:
    return {"id": o.id, "name": o.name, "slug": o.slug, "orgType": o.org_type, "logo": o.logo,
            "metadata": o.data or {}, "createdAt": o.created_at}


def member_view(m: Member, user: User | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"id": m.id, "organizationId": m.organization_id, "userId": m.user_id,
                            "role": m.role, "createdAt": m.created_at}
    if user is not None:
        view["user"] = {"id": user.id, "email": user.email, "name": user.name, "image": user.image}
    return view


def invitation_view(i: Invitation, now: int | None = None) -> dict[str, Any]:
    status = i.status
    if status == "pending" and i.expires_at <= (now or now_ms()):
        status = "expired"
    return {"id": i.id, "organizationId": i.organization_id, "email": i.email, "role": i.role,
            "status": status, "expiresAt": i.expires_at, "inviterId": i.inviter_id, "createdAt": i.created_at}


async def create_org(
    ctx: IAMContext, caller: Caller, *, name: str, slug: str, owner_id: str, org_type: str,
    logo: str | None = None, metadata: dict[str, Any] | None = None, set_active: bool = False,
) -> Organization:
    if set_active:
        await current_session(ctx, caller)
    try:
        async with ctx.db.session() as s:
            if org_type == OPERATOR_ORG_TYPE:
                raise operator_grant_required()
            if await s.get(User, owner_id) is None:
                raise NNOError(404, "USER_NOT_FOUND", "Owner not found", {"ownerId": owner_id})
            if (await s.execute(select(Organization.id).where(Organization.slug == slug))).first():
                raise NNOError(409, "SLUG_TAKEN", "An organization with this slug already exists", {"slug": slug})
            now = now_ms()
            org = Organization(id=new_id(), name=name, slug=slug, org_type=org_type, logo=logo,
                               data=metadata or {}, created_at=now)
            s.add(org)
            await s.flush()
            s.add(Member(id=new_id(), organization_id=org.id, user_id=owner_id, role="owner", created_at=now))
            if set_active and caller.session is not None:
                row = await s.get(Session, caller.session.id)
                if row is not None:
                    row.active_organization_id = org.id
            audit.record(s, caller, "org.create", org_id=org.id, target_type="organization", target_id=org.id,
                         data={"slug": slug, "orgType": org_type, "ownerId": owner_id})
    except IntegrityError as exc:
        raise NNOError(409, "SLUG_TAKEN", "An organization with this slug already exists", {"slug": slug}) from exc
    return org


async def create_for_caller(ctx: IAMContext, caller: Caller, body: OrgCreateBody) -> Organization:
    if caller.kind != "user" or not caller.user_id:
        raise NNOError(401, "UNAUTHORIZED", "A signed-in user session is required")
    return await create_org(ctx, caller, name=body.name, slug=body.slug, owner_id=caller.user_id,
                            org_type=body.orgType, logo=body.logo, metadata=body.metadata,
                            set_active=not body.keepCurrentActiveOrganization)


async def list_mine(ctx: IAMContext, caller: Caller) -> list[dict[str, Any]]:
    async with ctx.db.session() as s:
        rows = (await s.execute(
            select(Organization, Member.role).join(Member, Member.organization_id == Organization.id)
            .where(Member.user_id == caller.user_id).order_by(Organization.created_at, Organization.id))).all()
    return [{**org_view(o), "role": role} for o, role in rows]


async def resolve_org_id(ctx: IAMContext, caller: Caller, org_id: str | None) -> str:
    """An explicit organizationId, else the session's active organization."""
    if org_id:
        return org_id
    await current_session(ctx, caller)
    if caller.session is not None and caller.session.active_organization_id:
        return caller.session.active_organization_id
    raise NNOError(400, "NO_ACTIVE_ORGANIZATION", "Give organizationId or set an active organization",
                   {"field": "organizationId"})


async def set_active(ctx: IAMContext, caller: Caller, org_id: str | None, slug: str | None) -> dict[str, Any] | None:
    if caller.session is None:
        raise NNOError(401, "UNAUTHORIZED", "A valid session token is required")
    async with ctx.db.session() as s:
        org: Organization | None = None
        if org_id or slug:
            q = select(Organization).where(Organization.id == org_id if org_id else Organization.slug == slug)
            org = (await s.execute(q)).scalar_one_or_none()
            if org is None or await membership(s, caller.user_id, org.id) is None:
                raise NNOError(404, "ORGANIZATION_NOT_FOUND", "Organization not found")
        row = await s.get(Session, caller.session.id)
        if row is None:
            raise NNOError(401, "UNAUTHORIZED", "The session has ended")
        row.active_organization_id = org.id if org else None
        caller.session.active_organization_id = row.active_organization_id
        audit.record(s, caller, "session.set_active_org", org_id=org.id if org else None, target_type="session",
                     target_id=row.id)
    return org_view(org) if org else None


async def full_org(ctx: IAMContext, caller: Caller, org_id: str) -> dict[str, Any]:
    async with ctx.db.session() as s:
        org = await require_org_reader(s, caller, org_id)
        members = (await s.execute(
            select(Member, User).join(User, User.id == Member.user_id)
            .where(Member.organization_id == org_id).order_by(Member.created_at, Member.id))).all()
        invitations = (await s.execute(
            select(Invitation).where(Invitation.organization_id == org_id, Invitation.status == "pending")
            .order_by(Invitation.created_at))).scalars().all()
    now = now_ms()
    return {**org_view(org), "members": [member_view(m, u) for m, u in members],
            "invitations": [invitation_view(i, now) for i in invitations]}


async def active_member(ctx: IAMContext, caller: Caller) -> dict[str, Any]:
    """The caller's membership (with its user) in their session's active organization."""
    if caller.session is None or not caller.session.active_organization_id:
        raise NNOError(400, "NO_ACTIVE_ORGANIZATION", "No active organization")
    async with ctx.db.session() as s:
        member = await membership(s, caller.user_id, caller.session.active_organization_id)
        user = await s.get(User, caller.user_id) if member is not None else None
    if member is None:
        raise NNOError(400, "MEMBER_NOT_FOUND", "Member not found")
    return member_view(member, user)


async def slug_available(ctx: IAMContext, slug: str) -> None:
    """Nothing if no organization has `slug`; else the error `create` would give for it."""
    async with ctx.db.session() as s:
        taken = (await s.execute(select(Organization.id).where(Organization.slug == slug).limit(1))).first()
    if taken is not None:
        raise NNOError(409, "SLUG_TAKEN", "An organization with this slug already exists", {"slug": slug})


async def list_members(ctx: IAMContext, caller: Caller, org_id: str) -> list[dict[str, Any]]:
    async with ctx.db.session() as s:
        await require_org_reader(s, caller, org_id)
        rows = (await s.execute(
            select(Member, User).join(User, User.id == Member.user_id)
            .where(Member.organization_id == org_id).order_by(Member.created_at, Member.id))).all()
    return [member_view(m, u) for m, u in rows]


async def _owner_count(s: AsyncSession, org_id: str) -> int:
    q = select(func.count()).select_from(Member).where(Member.organization_id == org_id, Member.role == "owner")
    return int((await s.execute(q)).scalar_one())


async def _check_may_assign(s: AsyncSession, caller: Caller, org_id: str, role: str) -> None:
    """Only owners (or operators/services) hand out or take away the owner role."""
    if role != "owner" or await is_privileged(s, caller):
        return
    me = await membership(s, caller.user_id, org_id)
    if me is None or me.role != "owner":
        raise NNOError(403, "FORBIDDEN", "Only an owner may grant or change the owner role")


async def add_member(ctx: IAMContext, caller: Caller, body: AddMemberBody) -> dict[str, Any]:
    org_id = await resolve_org_id(ctx, caller, body.organizationId)
    async with ctx.db.session() as s:
        _no_operator_org(await require_org_admin(s, caller, org_id))
        await _check_may_assign(s, caller, org_id, body.role)
        if await s.get(User, body.userId) is None:
            raise NNOError(404, "USER_NOT_FOUND", "User not found", {"userId": body.userId})
        if await membership(s, body.userId, org_id) is not None:
            raise NNOError(409, "ALREADY_A_MEMBER", "The user is already a member of this organization")
        m = Member(id=new_id(), organization_id=org_id, user_id=body.userId, role=body.role, created_at=now_ms())
        s.add(m)
        audit.record(s, caller, "member.add", org_id=org_id, target_type="user", target_id=body.userId,
                     data={"role": body.role})
    return member_view(m)


async def _find_member(s: AsyncSession, org_id: str, member_id_or_email: str) -> Member:
    q = select(Member).where(Member.organization_id == org_id)
    if "@" in member_id_or_email:
        q = q.join(User, User.id == Member.user_id).where(User.email == member_id_or_email.lower())
    else:
        q = q.where(Member.id == member_id_or_email)
    m = (await s.execute(q)).scalar_one_or_none()
    if m is None:
        raise NNOError(404, "MEMBER_NOT_FOUND", "Member not found")
    return m


async def remove_member(ctx: IAMContext, caller: Caller, body: RemoveMemberBody) -> dict[str, Any]:
    org_id = await resolve_org_id(ctx, caller, body.organizationId)
    async with ctx.db.session() as s:
        await require_org_admin(s, caller, org_id)
        m = await _find_member(s, org_id, body.memberIdOrEmail)
        await _check_may_assign(s, caller, org_id, m.role)
        if m.role == "owner" and await _owner_count(s, org_id) <= 1:
            raise NNOError(409, "LAST_OWNER", "An organization keeps at least one owner")
        await s.delete(m)
        audit.record(s, caller, "member.remove", org_id=org_id, target_type="user", target_id=m.user_id)
    return {"member": member_view(m)}


async def update_member_role(ctx: IAMContext, caller: Caller, body: UpdateMemberRoleBody) -> dict[str, Any]:
    org_id = await resolve_org_id(ctx, caller, body.organizationId)
    async with ctx.db.session() as s:
        await require_org_admin(s, caller, org_id)
        m = await _find_member(s, org_id, body.memberId)
        await _check_may_assign(s, caller, org_id, body.role)
        await _check_may_assign(s, caller, org_id, m.role)
        if m.role == "owner" and body.role != "owner" and await _owner_count(s, org_id) <= 1:
            raise NNOError(409, "LAST_OWNER", "An organization keeps at least one owner")
        old, m.role = m.role, body.role
        audit.record(s, caller, "member.update_role", org_id=org_id, target_type="user", target_id=m.user_id,
                     data={"from": old, "to": body.role})
    return member_view(m)


async def update_org(ctx: IAMContext, caller: Caller, org_id: str, changes: dict[str, Any]) -> Organization:
    if not changes:
        raise NNOError(400, "VALIDATION_ERROR", "Nothing to update", {"field": "data"})
    if any(changes.get(k, "") is None for k in ("name", "slug")):
        raise NNOError(400, "VALIDATION_ERROR", "name and slug cannot be null", {"field": "data"})
    try:
        async with ctx.db.session() as s:
            org = await require_org_admin(s, caller, org_id)
            slug = changes.get("slug")
            if slug and slug != org.slug and (await s.execute(
                    select(Organization.id).where(Organization.slug == slug))).first():
                raise NNOError(409, "SLUG_TAKEN", "An organization with this slug already exists", {"slug": slug})
            for key, value in changes.items():
                setattr(org, "data" if key == "metadata" else key, value)
            audit.record(s, caller, "org.update", org_id=org.id, target_type="organization", target_id=org.id,
                         data={"fields": sorted(changes)})
    except IntegrityError as exc:
        raise NNOError(409, "SLUG_TAKEN", "An organization with this slug already exists") from exc
    return org


async def delete_org(ctx: IAMContext, caller: Caller, org_id: str) -> Organization:
    """Owners (or operators and services) delete an organization with its members, invitations, roles
    and grants. The last nno-operator organization is kept: it is how operators exist at all."""
    async with ctx.db.session() as s:
        org = await require_org_admin(s, caller, org_id)
        if not await is_privileged(s, caller):
            me = await membership(s, caller.user_id, org_id)
            if me is None or me.role != "owner":
                raise NNOError(403, "FORBIDDEN", "Only an owner may delete the organization")
        if org.org_type == "nno-operator":
            others = (await s.execute(select(func.count()).select_from(Organization).where(
                Organization.org_type == "nno-operator", Organization.id != org_id))).scalar_one()
            if not others:
                raise NNOError(409, "LAST_OPERATOR_ORG", "The last nno-operator organization cannot be deleted")
        # Explicit deletes rather than relying on ON DELETE CASCADE, which SQLite applies only with
        # its foreign-key pragma on.
        await s.execute(delete(PermissionGrant).where(PermissionGrant.org_id == org_id))
        await s.execute(delete(RolePermission).where(RolePermission.org_id == org_id))
        await s.execute(delete(Invitation).where(Invitation.organization_id == org_id))
        await s.execute(delete(Member).where(Member.organization_id == org_id))
        await s.execute(update(Session).where(Session.active_organization_id == org_id)
                        .values(active_organization_id=None))
        await s.delete(org)
        audit.record(s, caller, "org.delete", org_id=org_id, target_type="organization", target_id=org_id,
                     data={"slug": org.slug})
    return org


async def leave(ctx: IAMContext, caller: Caller, org_id: str) -> dict[str, Any]:
    """The caller leaves `org_id`; answers the membership that ended. A session whose active
    organization it was has none after."""
    async with ctx.db.session() as s:
        m = await membership(s, caller.user_id, org_id)
        if m is None:
            raise NNOError(404, "ORGANIZATION_NOT_FOUND", "Organization not found")
        if m.role == "owner" and await _owner_count(s, org_id) <= 1:
            raise NNOError(409, "LAST_OWNER", "An organization keeps at least one owner")
        await s.delete(m)
        await s.execute(update(Session).where(Session.user_id == m.user_id,
                                              Session.active_organization_id == org_id)
                        .values(active_organization_id=None).execution_options(synchronize_session=False))
        audit.record(s, caller, "member.leave", org_id=org_id, target_type="user", target_id=m.user_id)
    if caller.session is not None and caller.session.active_organization_id == org_id:
        caller.session.active_organization_id = None
    return member_view(m)


async def active_member_role(ctx: IAMContext, caller: Caller, org_id: str, user_id: str | None) -> dict[str, Any]:
    """The role of `user_id` (default: the caller) in `org_id`, for a member of it; anyone else is told
    only that they are not a member."""
    async with ctx.db.session() as s:
        mine = await membership(s, caller.user_id, org_id)
        found = mine if mine is None or not user_id else await membership(s, user_id, org_id)
    if found is None:
        raise NNOError(403, "YOU_ARE_NOT_A_MEMBER_OF_THIS_ORGANIZATION", "You are not a member of this organization")
    return {"role": found.role}


def _invite_link(ctx: IAMContext, invitation_id: str) -> str:
    return f"{ctx.public_base}/api/auth/organization/get-invitation?id={invitation_id}"


async def invite(ctx: IAMContext, caller: Caller, body: InviteBody) -> dict[str, Any]:
    org_id = await resolve_org_id(ctx, caller, body.organizationId)
    mail: OutgoingMail | None = None
    async with ctx.db.session() as s:
        org = await require_org_admin(s, caller, org_id)
        _no_operator_org(org)
        await _check_may_assign(s, caller, org_id, body.role)
        existing_user = (await s.execute(select(User.id).where(User.email == body.email))).scalar_one_or_none()
        if existing_user and await membership(s, existing_user, org_id) is not None:
            raise NNOError(409, "ALREADY_A_MEMBER", "This person is already a member")
        now = now_ms()
        pending = (await s.execute(select(Invitation).where(
            Invitation.organization_id == org_id, Invitation.email == body.email, Invitation.status == "pending",
            Invitation.expires_at > now))).scalar_one_or_none()
        if pending is not None and not body.resend:
            raise NNOError(409, "ALREADY_INVITED", "This person already has a pending invitation",
                           {"invitationId": pending.id})
        if pending is not None:
            pending.expires_at = now + INVITATION_TTL_MS
            inv = pending
        else:
            inv = Invitation(id=new_id(), organization_id=org_id, email=body.email, role=body.role,
                             status="pending", expires_at=now + INVITATION_TTL_MS,
                             inviter_id=caller.user_id or "service", created_at=now)
            s.add(inv)
        mail = ctx.mailer.enqueue(
            s, kind="invitation", to=body.email, subject=f"You are invited to {org.name} on NNO",
            body=f"You have been invited to join {org.name} as {body.role}.\n\n"
                 f"Invitation id: {inv.id}\nSign in and accept it: {_invite_link(ctx, inv.id)}\n"
                 "The invitation expires in 48 hours.")
        audit.record(s, caller, "invitation.create", org_id=org_id, target_type="invitation", target_id=inv.id,
                     data={"email": body.email, "role": body.role})
    await ctx.mailer.deliver(mail)
    return invitation_view(inv)


async def _proven_email(s: AsyncSession, caller: Caller) -> str:
    """The caller's address, once they have proven they hold it: invitations are addressed to it."""
    user = await s.get(User, caller.user_id) if caller.user_id else None
    if user is None:
        raise NNOError(401, "UNAUTHORIZED", "A signed-in user session is required")
    if not user.email_verified:
        raise NNOError(403, "EMAIL_NOT_VERIFIED",
                       f"Prove that {user.email} is yours before using its invitations: sign in with a magic "
                       "link sent to it (POST /api/auth/sign-in/magic-link), then try again",
                       {"email": user.email})
    return user.email


async def _invitation_for_invitee(s: AsyncSession, caller: Caller, invitation_id: str) -> Invitation:
    inv = await s.get(Invitation, invitation_id)
    if inv is None or inv.email != await _proven_email(s, caller):
        raise NNOError(404, "INVITATION_NOT_FOUND", "Invitation not found")
    return inv


def _check_pending(inv: Invitation) -> None:
    if inv.status != "pending":
        raise NNOError(409, "INVITATION_NOT_PENDING", f"This invitation is already {inv.status}",
                       {"status": inv.status})
    if inv.expires_at <= now_ms():
        raise NNOError(410, "INVITATION_EXPIRED", "This invitation has expired")


async def get_invitation(ctx: IAMContext, caller: Caller, invitation_id: str) -> dict[str, Any]:
    async with ctx.db.session() as s:
        inv = await _invitation_for_invitee(s, caller, invitation_id)
        org = await get_org(s, inv.organization_id)
    return {**invitation_view(inv), "organizationName": org.name, "organizationSlug": org.slug}


async def _hold_invitee(s: AsyncSession, caller: Caller, session: Session | None) -> None:
    """Acting on an invitation outlives the session: only from one still live once the account is held
    (the gateway may still vouch for a session revoked in the last seconds, such as a squatter's when
    the address's holder proved it)."""
    assert caller.user_id
    if session is None or await lock_user(s, caller.user_id) is None or not await session_is_live(s, session.id):
        raise NNOError(401, "UNAUTHORIZED", "A valid session token is required")


async def accept(ctx: IAMContext, caller: Caller, invitation_id: str) -> dict[str, Any]:
    session = await current_session(ctx, caller)
    async with ctx.db.session() as s:
        await _hold_invitee(s, caller, session)
        inv = await _invitation_for_invitee(s, caller, invitation_id)
        _check_pending(inv)
        assert caller.user_id
        _no_operator_org(await get_org(s, inv.organization_id))
        if await membership(s, caller.user_id, inv.organization_id) is not None:
            raise NNOError(409, "ALREADY_A_MEMBER", "You are already a member of this organization")
        inv.status = "accepted"
        m = Member(id=new_id(), organization_id=inv.organization_id, user_id=caller.user_id, role=inv.role,
                   created_at=now_ms())
        s.add(m)
        audit.record(s, caller, "invitation.accept", org_id=inv.organization_id, target_type="invitation",
                     target_id=inv.id, data={"role": inv.role})
    return {"invitation": invitation_view(inv), "member": member_view(m)}


async def reject(ctx: IAMContext, caller: Caller, invitation_id: str) -> dict[str, Any]:
    session = await current_session(ctx, caller)
    async with ctx.db.session() as s:
        await _hold_invitee(s, caller, session)
        inv = await _invitation_for_invitee(s, caller, invitation_id)
        _check_pending(inv)
        inv.status = "rejected"
        audit.record(s, caller, "invitation.reject", org_id=inv.organization_id, target_type="invitation",
                     target_id=inv.id)
    return {"invitation": invitation_view(inv), "member": None}


async def cancel(ctx: IAMContext, caller: Caller, invitation_id: str) -> dict[str, Any]:
    async with ctx.db.session() as s:
        inv = await s.get(Invitation, invitation_id)
        if inv is None:
            raise NNOError(404, "INVITATION_NOT_FOUND", "Invitation not found")
        try:
            await require_org_admin(s, caller, inv.organization_id)
        except NNOError as exc:
            if exc.status == 404:
                raise NNOError(404, "INVITATION_NOT_FOUND", "Invitation not found") from exc
            raise
        if inv.status != "pending":
            raise NNOError(409, "INVITATION_NOT_PENDING", f"This invitation is already {inv.status}",
                           {"status": inv.status})
        inv.status = "canceled"
        audit.record(s, caller, "invitation.cancel", org_id=inv.organization_id, target_type="invitation",
                     target_id=inv.id)
    return invitation_view(inv)


async def list_invitations(ctx: IAMContext, caller: Caller, org_id: str) -> list[dict[str, Any]]:
    async with ctx.db.session() as s:
        await require_org_admin(s, caller, org_id)
        rows = (await s.execute(select(Invitation).where(Invitation.organization_id == org_id)
                                .order_by(Invitation.created_at.desc(), Invitation.id))).scalars().all()
    now = now_ms()
    return [invitation_view(i, now) for i in rows]


async def list_user_invitations(ctx: IAMContext, caller: Caller) -> list[dict[str, Any]]:
    async with ctx.db.session() as s:
        email = await _proven_email(s, caller)
        rows = (await s.execute(select(Invitation, Organization).join(
            Organization, Organization.id == Invitation.organization_id).where(
            Invitation.email == email, Invitation.status == "pending", Invitation.expires_at > now_ms())
            .order_by(Invitation.created_at.desc()))).all()
    return [{**invitation_view(i), "organizationName": o.name, "organizationSlug": o.slug} for i, o in rows]


