"""Sessions: opaque bearer tokens stored as SHA-256 digests, 7-day expiry with sliding renewal once a
session is a day old, and the enriched NNO session view the gateway validates against."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam.context import SESSION_TTL_MS, SESSION_UPDATE_AGE_MS, SHORT_SESSION_TTL_MS
from nno.iam.models import Member, Organization, PlatformMember, Session, User
from nno.iam.security import new_secret
from nno.kernel.clock import now_ms
from nno.kernel.db import Database
from nno.kernel.identity import ROLE_OPERATOR, ROLE_PLATFORM_ADMIN, ROLE_USER
from nno.kernel.ids import new_id, token_hash


def create_session(
    s: AsyncSession,
    user_id: str,
    *,
    method: str,
    persistent: bool = True,
    ip: str | None = None,
    user_agent: str | None = None,
    active_organization_id: str | None = None,
) -> tuple[str, Session]:
    token, digest = new_secret()
    now = now_ms()
    row = Session(
        id=new_id(), token_hash=digest, user_id=user_id, created_at=now, updated_at=now,
        expires_at=now + (SESSION_TTL_MS if persistent else SHORT_SESSION_TTL_MS), ip_address=ip,
        user_agent=user_agent, method=method, persistent=persistent,
        active_organization_id=active_organization_id,
    )
    s.add(row)
    return token, row


async def find_session(db: Database, token: str) -> Session | None:
    """The live session for a token, renewed (sliding) when it is older than a day."""
    async with db.session() as s:
        found = await live_session(s, token)
    return found[0] if found else None


async def live_session(s: AsyncSession, token: str) -> tuple[Session, User] | None:
    """The live session for a token and its user, in one query; renews it when it is a day old."""
    now = now_ms()
    q = (select(Session, User).join(User, User.id == Session.user_id)
         .where(Session.token_hash == token_hash(token)))
    row = (await s.execute(q)).first()
    if row is None or row[0].expires_at <= now:
        return None
    session, user = row[0], row[1]
    if session.persistent and now - session.updated_at >= SESSION_UPDATE_AGE_MS:
        session.updated_at = now
        session.expires_at = now + SESSION_TTL_MS
    return session, user


async def revoke_session(s: AsyncSession, session_id: str) -> bool:
    result = await s.execute(delete(Session).where(Session.id == session_id))
    return bool(getattr(result, "rowcount", 0))


async def revoke_user_sessions(s: AsyncSession, user_id: str, *, except_id: str | None = None) -> int:
    q = delete(Session).where(Session.user_id == user_id)
    if except_id:
        q = q.where(Session.id != except_id)
    result = await s.execute(q)
    return int(getattr(result, "rowcount", 0) or 0)


async def lock_user(s: AsyncSession, user_id: str) -> User | None:
    """Lock account `user_id` for the rest of the transaction and return its current row (None if
    there is no such account).

    Every transaction that mints a credential for an account or changes its credentials calls this
    first, so it runs wholly before or wholly after any other such transaction (above all the
    revocation of an account's unproven credentials, `accounts.revoke_unproven_credentials`) and sees
    what that one committed: a password checked, or a session relied on, before the revocation cannot
    mint anything after it. PostgreSQL: the row lock of a no-op UPDATE. SQLite: the write lock the
    transaction's first write statement takes (reads before it see no later commit)."""
    await s.execute(update(User).where(User.id == user_id).values(updated_at=User.updated_at)
                    .execution_options(synchronize_session=False))
    return (await s.execute(select(User).where(User.id == user_id)
                            .execution_options(populate_existing=True))).scalar_one_or_none()


async def session_is_live(s: AsyncSession, session_id: str) -> bool:
    row = (await s.execute(select(Session.expires_at).where(Session.id == session_id))).first()
    return row is not None and row[0] > now_ms()


async def set_active_org(s: AsyncSession, session_id: str, org_id: str | None) -> None:
    await s.execute(update(Session).where(Session.id == session_id).values(active_organization_id=org_id))


def user_view(u: User) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "name": u.name, "image": u.image, "emailVerified": u.email_verified,
            "createdAt": u.created_at, "updatedAt": u.updated_at}


def session_row_view(row: Session, *, current_id: str | None = None) -> dict[str, Any]:
    view = {"id": row.id, "userId": row.user_id, "expiresAt": row.expires_at, "createdAt": row.created_at,
            "updatedAt": row.updated_at, "ipAddress": row.ip_address, "userAgent": row.user_agent,
            "activeOrganizationId": row.active_organization_id, "activePlatformId": row.active_platform_id,
            "method": row.method}
    if current_id is not None:
        view["current"] = row.id == current_id
    return view


def holds_platform_admin(user: User) -> bool:
    """On a per-platform auth app: the user's platform-admin role counts only once their address is
    proven (a role granted to an account someone merely signed up with confers nothing)."""
    return user.role == ROLE_PLATFORM_ADMIN and bool(user.email_verified)


def operators_query() -> Select[User]:
    """Operators: members of an nno-operator organization whose address is proven (an account that
    merely signed up with an address is never one, whatever memberships it holds)."""
    return (select(User).join(Member, Member.user_id == User.id)
            .join(Organization, Organization.id == Member.organization_id)
            .where(Organization.org_type == "nno-operator", User.email_verified.is_(True)))


async def is_operator(s: AsyncSession, user_id: str) -> bool:
    return (await s.execute(operators_query().where(User.id == user_id).limit(1))).first() is not None


async def platform_memberships(s: AsyncSession, user_id: str) -> list[PlatformMember]:
    q = (select(PlatformMember).where(PlatformMember.user_id == user_id)
         .order_by(PlatformMember.created_at, PlatformMember.platform_id))
    return list((await s.execute(q)).scalars().all())


async def nno_identity(
    s: AsyncSession, user: User, session: Session | None, *, platform_id: str | None
) -> tuple[str, str | None]:
    """(role, platformId) as contracts §3 defines them. A per-platform auth app (platform_id set) uses
    the user's own platform-level role."""
    if platform_id is not None:
        return (ROLE_PLATFORM_ADMIN if holds_platform_admin(user) else ROLE_USER), platform_id
    memberships = await platform_memberships(s, user.id)
    chosen: PlatformMember | None = None
    if session is not None and session.active_platform_id:
        chosen = next((m for m in memberships if m.platform_id == session.active_platform_id), None)
    if chosen is None and memberships:
        chosen = memberships[0]
    if await is_operator(s, user.id):
        role = ROLE_OPERATOR
    elif chosen is not None and chosen.role == ROLE_PLATFORM_ADMIN:
        role = ROLE_PLATFORM_ADMIN
    else:
        role = ROLE_USER
    return role, chosen.platform_id if chosen else None
