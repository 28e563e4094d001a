"""First-run setup: the first NNO operator (a user with email and password) and the `nno-operator`
organization it owns. Refused with 409 once any nno-operator organization exists.

Who may ask: a service (the static key), the local-dev bypass from this machine only (the operator
it makes outlives the bypass once AUTH_API_KEY is set), or `nno admin bootstrap --offline`, which
runs on the server's machine straight against IAM's database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from nno.iam import audit
from nno.iam.accounts import new_user
from nno.iam.caller import Caller
from nno.iam.context import IAMContext
from nno.iam.mailer import Mailer
from nno.iam.models import Member, Organization, User
from nno.iam.orgs import org_view
from nno.iam.schemas import BootstrapBody
from nno.iam.security import check_password_policy, hash_password
from nno.iam.sessions import create_session, user_view
from nno.kernel.clock import now_ms
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id
from nno.kernel.migrations import upgrade


async def is_bootstrapped(ctx: IAMContext) -> bool:
    async with ctx.db.session() as s:
        q = select(Organization.id).where(Organization.org_type == "nno-operator").limit(1)
        return (await s.execute(q)).first() is not None


async def bootstrap(ctx: IAMContext, caller: Caller, body: BootstrapBody) -> dict[str, Any]:
    check_password_policy(body.password, body.email)
    pw_hash = hash_password(body.password)
    already = NNOError(409, "ALREADY_BOOTSTRAPPED", "NNO already has an operator organization")
    try:
        async with ctx.db.session() as s:
            if (await s.execute(select(Organization.id).where(Organization.org_type == "nno-operator")
                                .limit(1).with_for_update())).first():
                raise already
            if (await s.execute(select(User.id).where(User.email == body.email))).first():
                raise NNOError(409, "USER_ALREADY_EXISTS", "An account with this email already exists")
            if (await s.execute(select(Organization.id).where(Organization.slug == body.organizationSlug))).first():
                raise NNOError(409, "SLUG_TAKEN", "An organization with this slug already exists")
            user = new_user(body.email, body.name, pw_hash, verified=True)
            s.add(user)
            now = now_ms()
            org = Organization(id=new_id(), name=body.organizationName, slug=body.organizationSlug,
                               org_type="nno-operator", data={}, created_at=now)
            s.add(org)
            await s.flush()
            s.add(Member(id=new_id(), organization_id=org.id, user_id=user.id, role="owner", created_at=now))
            token, session = create_session(s, user.id, method="bootstrap", active_organization_id=org.id)
            audit.record(s, caller, "bootstrap", org_id=org.id, target_type="user", target_id=user.id,
                         data={"email": body.email, "organizationSlug": body.organizationSlug})
    except IntegrityError as exc:
        raise already from exc
    return {"user": user_view(user), "organization": org_view(org), "token": token,
            "expiresAt": session.expires_at}


async def bootstrap_offline(settings: Settings, body: BootstrapBody) -> dict[str, Any]:
    """The same, without a server: on IAM's database under `settings` (the data directory or
    NNO_DATABASE_URL). Whoever can open those already holds the installation."""
    from nno.iam.auth_app import AUTH_MIGRATIONS_DIR  # auth_app imports this module through its views

    db = Database.for_service(settings, "iam")
    try:
        await upgrade(db, AUTH_MIGRATIONS_DIR)
        ctx = IAMContext(db=db, settings=settings, mailer=Mailer(db, None, settings.mail_from))
        caller = Caller(kind="service", user_agent="nno admin bootstrap --offline")
        return await bootstrap(ctx, caller, body)
    finally:
        await db.dispose()
