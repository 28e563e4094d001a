"""Better Auth organization routes (`/api/auth/organization/*`) and the organization directory
(`GET /api/nno/organizations`), shared with per-platform auth apps, and the NNO-only
`POST /api/nno/organizations` (nno_router)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from nno.iam import orgs
from nno.iam.access import is_privileged, may_see_every_org, require_privileged
from nno.iam.caller import Caller, iam_ctx, require_authenticated, require_session, require_user
from nno.iam.models import Organization
from nno.iam.schemas import (
    AddMemberBody,
    CheckSlugBody,
    InvitationIdBody,
    InviteBody,
    LeaveOrgBody,
    NnoOrgCreateBody,
    OrgCreateBody,
    OrgDeleteBody,
    OrgUpdateBody,
    RemoveMemberBody,
    SetActiveOrgBody,
    UpdateMemberRoleBody,
)
from nno.kernel.errors import NNOError

router = APIRouter(tags=["organizations"])
directory_router = APIRouter(tags=["organizations"])
nno_router = APIRouter(tags=["organizations"])
P = "/api/auth/organization"


async def _org_id(request: Request, caller: Caller, org_id: str | None, slug: str | None = None) -> str:
    if slug and not org_id:
        async with iam_ctx(request).db.session() as s:
            found = (await s.execute(select(Organization.id).where(Organization.slug == slug))).scalar_one_or_none()
        if found is None:
            raise NNOError(404, "ORGANIZATION_NOT_FOUND", "Organization not found", {"slug": slug})
        return found
    return await orgs.resolve_org_id(iam_ctx(request), caller, org_id)


@router.post(f"{P}/create", status_code=201)
async def create(body: OrgCreateBody, request: Request, caller: Caller = Depends(require_user)) -> JSONResponse:
    ctx = iam_ctx(request)
    org = await orgs.create_for_caller(ctx, caller, body)
    # Better Auth answers the new organization with its members (the creator, as owner).
    return JSONResponse({**orgs.org_view(org), "members": await orgs.list_members(ctx, caller, org.id)},
                        status_code=201)


@router.post(f"{P}/update")
async def update(body: OrgUpdateBody, request: Request,
                 caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    org_id = await _org_id(request, caller, body.organizationId)
    changes = body.data.model_dump(exclude_unset=True)
    return orgs.org_view(await orgs.update_org(iam_ctx(request), caller, org_id, changes))


@router.post(f"{P}/delete")
async def delete(body: OrgDeleteBody, request: Request,
                 caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    # Better Auth answers the deleted organization.
    org = await orgs.delete_org(iam_ctx(request), caller, body.organizationId)
    return {**orgs.org_view(org), "success": True}


@router.get(f"{P}/list")
async def list_orgs(request: Request, caller: Caller = Depends(require_user)) -> list[dict[str, Any]]:
    return await orgs.list_mine(iam_ctx(request), caller)


@router.post(f"{P}/set-active")
async def set_active(body: SetActiveOrgBody, request: Request,
                     caller: Caller = Depends(require_session)) -> dict[str, Any] | None:
    return await orgs.set_active(iam_ctx(request), caller, body.organizationId, body.organizationSlug)


@router.get(f"{P}/get-active-member")
async def active_member(request: Request, caller: Caller = Depends(require_session)) -> dict[str, Any]:
    return await orgs.active_member(iam_ctx(request), caller)


@router.post(f"{P}/check-slug")
async def check_slug(body: CheckSlugBody, request: Request,
                     _: Caller = Depends(require_user)) -> dict[str, Any]:
    await orgs.slug_available(iam_ctx(request), body.slug)
    return {"status": True}


async def _named_or_active(request: Request, caller: Caller, org_id: str | None, slug: str | None) -> str | None:
    """The organization a request names, else the session's active one, else None."""
    try:
        return await _org_id(request, caller, org_id, slug)
    except NNOError as exc:
        if exc.code == "NO_ACTIVE_ORGANIZATION":
            return None
        raise


@router.get(f"{P}/get-full-organization")
async def full(request: Request, organizationId: str | None = None, organizationSlug: str | None = None,
               caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    """Better Auth's answer: `null` when nothing is named and no organization is active."""
    org_id = await _named_or_active(request, caller, organizationId, organizationSlug)
    return JSONResponse(None if org_id is None else await orgs.full_org(iam_ctx(request), caller, org_id))


@router.get(f"{P}/get-organization")
async def get_organization(request: Request, organizationId: str | None = None, organizationSlug: str | None = None,
                           caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    org_id = await _named_or_active(request, caller, organizationId, organizationSlug)
    if org_id is None:
        return JSONResponse(None)
    found = await orgs.full_org(iam_ctx(request), caller, org_id)
    return JSONResponse({k: v for k, v in found.items() if k not in ("members", "invitations")})


@router.get(f"{P}/get-active-member-role")
async def active_member_role(request: Request, userId: str | None = None, organizationId: str | None = None,
                             organizationSlug: str | None = None,
                             caller: Caller = Depends(require_session)) -> dict[str, Any]:
    org_id = await _org_id(request, caller, organizationId, organizationSlug)
    return await orgs.active_member_role(iam_ctx(request), caller, org_id, userId)


@router.get(f"{P}/list-members")
async def list_members(request: Request, organizationId: str | None = None, organizationSlug: str | None = None,
                       limit: int | None = Query(None, ge=1, le=10_000), offset: int = Query(0, ge=0, le=10**9),
                       caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    """Better Auth's page of members (oldest first) and the organization's `total`."""
    org_id = await _org_id(request, caller, organizationId, organizationSlug)
    members = await orgs.list_members(iam_ctx(request), caller, org_id)
    page = members[offset:] if limit is None else members[offset:offset + limit]
    return {"members": page, "total": len(members)}


@router.post(f"{P}/add-member", status_code=201)
async def add_member(body: AddMemberBody, request: Request,
                     caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    return JSONResponse(await orgs.add_member(iam_ctx(request), caller, body), status_code=201)


@router.post(f"{P}/remove-member")
async def remove_member(body: RemoveMemberBody, request: Request,
                        caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await orgs.remove_member(iam_ctx(request), caller, body)


@router.post(f"{P}/update-member-role")
async def update_member_role(body: UpdateMemberRoleBody, request: Request,
                             caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await orgs.update_member_role(iam_ctx(request), caller, body)


@router.post(f"{P}/leave")
async def leave(body: LeaveOrgBody, request: Request, caller: Caller = Depends(require_user)) -> dict[str, Any]:
    return await orgs.leave(iam_ctx(request), caller, body.organizationId)


@router.post(f"{P}/invite-member", status_code=201)
async def invite(body: InviteBody, request: Request,
                 caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    return JSONResponse(await orgs.invite(iam_ctx(request), caller, body), status_code=201)


@router.post(f"{P}/accept-invitation")
async def accept(body: InvitationIdBody, request: Request, caller: Caller = Depends(require_user)) -> dict[str, Any]:
    return await orgs.accept(iam_ctx(request), caller, body.invitationId)


@router.post(f"{P}/reject-invitation")
async def reject(body: InvitationIdBody, request: Request, caller: Caller = Depends(require_user)) -> dict[str, Any]:
    return await orgs.reject(iam_ctx(request), caller, body.invitationId)


@router.post(f"{P}/cancel-invitation")
async def cancel(body: InvitationIdBody, request: Request,
                 caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await orgs.cancel(iam_ctx(request), caller, body.invitationId)


@router.get(f"{P}/list-invitations")
async def list_invitations(request: Request, organizationId: str | None = None,
                           caller: Caller = Depends(require_authenticated)) -> list[dict[str, Any]]:
    org_id = await _org_id(request, caller, organizationId)
    return await orgs.list_invitations(iam_ctx(request), caller, org_id)


@router.get(f"{P}/get-invitation")
async def get_invitation(request: Request, id: str = "", caller: Caller = Depends(require_user)) -> dict[str, Any]:
    if not id:
        raise NNOError(400, "VALIDATION_ERROR", "id is required", {"field": "id"})
    return await orgs.get_invitation(iam_ctx(request), caller, id)


@router.get(f"{P}/list-user-invitations")
async def list_user_invitations(request: Request, caller: Caller = Depends(require_user)) -> list[dict[str, Any]]:
    return await orgs.list_user_invitations(iam_ctx(request), caller)


@nno_router.post("/api/nno/organizations", status_code=201)
async def nno_create(body: NnoOrgCreateBody, request: Request,
                     caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    """Create an organization for a tenant: services and operators for anyone, a user only for
    themselves."""
    ctx = iam_ctx(request)
    async with ctx.db.session() as s:
        privileged = await is_privileged(s, caller)
    if not privileged and not (caller.kind == "user" and body.ownerId == caller.user_id):
        raise NNOError(403, "FORBIDDEN", "You may only create organizations you own")
    org = await orgs.create_org(ctx, caller, name=body.name, slug=body.slug, owner_id=body.ownerId,
                                org_type=body.orgType)
    return JSONResponse(orgs.org_view(org), status_code=201)


@directory_router.get("/api/nno/organizations")
async def org_directory(request: Request, orgType: str | None = None,
                        caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    """Every organization for operators and services (and, on a per-platform auth app, for its
    platform-admins); a user's own otherwise (`/api/auth/organization/list` stays a user's own for
    everyone, as Better Auth's does)."""
    ctx = iam_ctx(request)
    async with ctx.db.session() as s:
        everything = await may_see_every_org(s, caller)
        if not everything and caller.kind != "user":
            await require_privileged(s, caller)
    if not everything:
        mine = await orgs.list_mine(ctx, caller)
        return {"data": [o for o in mine if orgType in (None, o["orgType"])]}
    async with ctx.db.session() as s:
        q = select(Organization).order_by(Organization.created_at, Organization.id)
        if orgType:
            q = q.where(Organization.org_type == orgType)
        rows = (await s.execute(q)).scalars().all()
    return {"data": [orgs.org_view(o) for o in rows]}
