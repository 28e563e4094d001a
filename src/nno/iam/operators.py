"""NNO operators: the members of the `nno-operator` organization, who see and run every platform.

Nobody becomes an operator through an organization route (`nno.iam.orgs` refuses to invite, add or
accept anyone into an `nno-operator` organization, and to create one). There are two ways in:
- `nno admin bootstrap` (`nno.iam.bootstrap`), once, for the first operator;
- an explicit grant by an operator (or the service key): `POST /api/nno/operators` names an existing
  account whose address is proven (`emailVerified`: a magic link or a password reset), never an
  address that someone may merely have signed up with.
An operator loses the right with `DELETE /api/nno/operators/{userId}` (the last one stays), and an
account whose address is not proven is never an operator, whatever memberships it holds
(`sessions.is_operator`). Every grant and revocation is audited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import audit
from nno.iam.access import require_privileged
from nno.iam.caller import Caller
from nno.iam.context import IAMContext
from nno.iam.models import Member, Organization, User
from nno.iam.orgs import OPERATOR_ORG_TYPE
from nno.iam.sessions import operators_query
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id


def operator_view(user: User, since: int) -> dict[str, Any]:
    return {"userId": user.id, "email": user.email, "name": user.name, "since": since}


async def _operator_org(s: AsyncSession) -> Organization:
    """The oldest nno-operator organization (bootstrap's): where grants add members."""
    org = (await s.execute(select(Organization).where(Organization.org_type == OPERATOR_ORG_TYPE)
                           .order_by(Organization.created_at, Organization.id).limit(1).with_for_update())
           ).scalar_one_or_none()
    if org is None:
        raise NNOError(409, "NOT_BOOTSTRAPPED", "NNO has no operator yet: run `nno admin bootstrap` first")
    return org


async def list_operators(ctx: IAMContext, caller: Caller) -> list[dict[str, Any]]:
    async with ctx.db.session() as s:
        await require_privileged(s, caller)
        rows = (await s.execute(operators_query().add_columns(func.min(Member.created_at))
                                .group_by(User.id).order_by(func.min(Member.created_at), User.id))).all()
    return [operator_view(user, since) for user, since in rows]


async def _find_user(s: AsyncSession, user_id: str | None, email: str | None) -> User:
    q = select(User).where(User.id == user_id) if user_id else select(User).where(User.email == email)
    user = (await s.execute(q)).scalar_one_or_none()
    if user is None:
        raise NNOError(404, "USER_NOT_FOUND", "No account with this id or email",
                       {"userId": user_id} if user_id else {"email": email})
    return user


async def grant(ctx: IAMContext, caller: Caller, user_id: str | None, email: str | None
                ) -> tuple[dict[str, Any], bool]:
    """(the operator, whether they were made one now)."""
    async with ctx.db.session() as s:
        await require_privileged(s, caller)
        org = await _operator_org(s)
        user = await _find_user(s, user_id, email)
        if not user.email_verified:
            raise NNOError(403, "EMAIL_NOT_VERIFIED",
                           "Only an account whose address is proven can be an operator: its holder signs in "
                           "once with a magic link sent to it, then ask again", {"userId": user.id})
        held = (await s.execute(operators_query().where(User.id == user.id)
                                .add_columns(Member.created_at).limit(1))).first()
        if held is not None:
            return operator_view(user, held[1]), False
        now = now_ms()
        s.add(Member(id=new_id(), organization_id=org.id, user_id=user.id, role="member", created_at=now))
        audit.record(s, caller, "operator.grant", org_id=org.id, target_type="user", target_id=user.id,
                     data={"email": user.email})
        return operator_view(user, now), True


async def revoke(ctx: IAMContext, caller: Caller, user_id: str) -> dict[str, Any]:
    async with ctx.db.session() as s:
        await require_privileged(s, caller)
        await _operator_org(s)  # locks the operator organization: two revocations run one at a time
        user = await s.get(User, user_id)
        held = list((await s.execute(select(Member).join(Organization, Organization.id == Member.organization_id)
                                     .where(Member.user_id == user_id,
                                            Organization.org_type == OPERATOR_ORG_TYPE))).scalars().all())
        if user is None or not held:
            raise NNOError(404, "NOT_AN_OPERATOR", "This account is not an operator", {"userId": user_id})
        another = (await s.execute(operators_query().where(User.id != user_id).limit(1))).first()
        if another is None:
            raise NNOError(409, "LAST_OPERATOR", "This is the last operator; grant another one first")
        for member in held:
            owners = (await s.execute(select(func.count()).select_from(Member).where(
                Member.organization_id == member.organization_id, Member.role == "owner",
                Member.id != member.id))).scalar_one()
            if member.role == "owner" and not owners:
                raise NNOError(409, "LAST_OWNER", "This operator is the last owner of the operator organization; "
                                                  "make another operator its owner first",
                               {"organizationId": member.organization_id})
        await s.execute(delete(Member).where(Member.id.in_([m.id for m in held])))
        audit.record(s, caller, "operator.revoke", org_id=held[0].organization_id, target_type="user",
                     target_id=user_id, data={"email": user.email})
    return {"userId": user_id, "email": user.email, "operator": False}
