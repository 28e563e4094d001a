"""`/api/nno/roles`, `/api/nno/grants` and `/api/nno/permissions/check` (NNO-only).

Members of an organization may read its roles and their own grants; owners and admins (and
operators and services) change them. Outsiders get 404, so org ids cannot be probed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from nno.iam import audit, rbac
from nno.iam.access import is_privileged, membership, require_org_admin, require_org_reader
from nno.iam.caller import Caller, iam_ctx, require_authenticated
from nno.iam.models import PermissionGrant, RolePermission, User
from nno.iam.schemas import GrantCreateBody, PermissionCheckBody, RoleUpsertBody
from nno.iam.views.common import ALREADY_SO
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id

router = APIRouter(tags=["rbac"])


def _org_query(orgId: str | None) -> str:
    if not orgId:
        raise NNOError(400, "VALIDATION_ERROR", "orgId is required", {"field": "orgId"})
    return orgId


@router.get("/api/nno/roles")
async def list_roles(request: Request, orgId: str | None = None,
                     caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    org_id = _org_query(orgId)
    async with iam_ctx(request).db.session() as s:
        await require_org_reader(s, caller, org_id)
        rows = (await s.execute(select(RolePermission).where(RolePermission.org_id == org_id)
                                .order_by(RolePermission.role))).scalars().all()
    return {"data": [rbac.role_view(r) for r in rows]}


@router.post("/api/nno/roles", status_code=201, responses=ALREADY_SO)
async def upsert_role(body: RoleUpsertBody, request: Request,
                      caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    perms = list(dict.fromkeys(body.permissions))
    async with iam_ctx(request).db.session() as s:
        await require_org_admin(s, caller, body.orgId)
        row = (await s.execute(select(RolePermission).where(
            RolePermission.org_id == body.orgId, RolePermission.role == body.role))).scalar_one_or_none()
        now = now_ms()
        created = row is None
        if row is None:
            row = RolePermission(id=new_id(), org_id=body.orgId, role=body.role, permissions=perms,
                                 created_at=now, updated_at=now)
            s.add(row)
        else:
            before = list(row.permissions or [])
            row.permissions, row.updated_at = perms, now
        audit.record(s, caller, "role.upsert", org_id=body.orgId, target_type="role", target_id=body.role,
                     data={"permissions": perms, **({} if created else {"previous": before})})
    return JSONResponse(rbac.role_view(row), status_code=201 if created else 200)


@router.delete("/api/nno/roles/{org_id}/{role}", status_code=204)
async def delete_role(org_id: str, role: str, request: Request,
                      caller: Caller = Depends(require_authenticated)) -> None:
    async with iam_ctx(request).db.session() as s:
        await require_org_admin(s, caller, org_id)
        row = (await s.execute(select(RolePermission).where(
            RolePermission.org_id == org_id, RolePermission.role == role))).scalar_one_or_none()
        if row is None:
            raise NNOError(404, "ROLE_NOT_FOUND", "No permissions are mapped for this role",
                           {"orgId": org_id, "role": role})
        await s.delete(row)
        audit.record(s, caller, "role.delete", org_id=org_id, target_type="role", target_id=role)


@router.get("/api/nno/grants")
async def list_grants(request: Request, orgId: str | None = None, userId: str | None = None,
                      caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    org_id = _org_query(orgId)
    async with iam_ctx(request).db.session() as s:
        await require_org_reader(s, caller, org_id)
        q = select(PermissionGrant).where(PermissionGrant.org_id == org_id)
        admin = await is_privileged(s, caller) or (
            (m := await membership(s, caller.user_id, org_id)) is not None and m.role in ("owner", "admin"))
        if not admin:
            if userId not in (None, caller.user_id):
                raise NNOError(403, "FORBIDDEN", "Members may only read their own grants")
            userId = caller.user_id
        if userId:
            q = q.where(PermissionGrant.user_id == userId)
        rows = (await s.execute(q.order_by(PermissionGrant.created_at, PermissionGrant.id))).scalars().all()
    return {"data": [rbac.grant_view(g) for g in rows]}


@router.post("/api/nno/grants", status_code=201)
async def create_grant(body: GrantCreateBody, request: Request,
                       caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    if body.expiresAt is not None and body.expiresAt <= now_ms():
        raise NNOError(422, "INVALID_EXPIRY", "expiresAt must be in the future", {"field": "expiresAt"})
    if caller.kind == "user" and body.grantedBy != caller.user_id:
        raise NNOError(403, "FORBIDDEN", "grantedBy must be the signed-in user", {"field": "grantedBy"})
    async with iam_ctx(request).db.session() as s:
        await require_org_admin(s, caller, body.orgId)
        if await s.get(User, body.userId) is None or await membership(s, body.userId, body.orgId) is None:
            raise NNOError(404, "MEMBER_NOT_FOUND", "The user is not a member of this organization",
                           {"userId": body.userId})
        g = PermissionGrant(id=new_id(), user_id=body.userId, org_id=body.orgId, permission=body.permission,
                            granted=body.granted, granted_by=body.grantedBy, expires_at=body.expiresAt,
                            created_at=now_ms())
        s.add(g)
        audit.record(s, caller, "grant.create", org_id=body.orgId, target_type="grant", target_id=g.id,
                     data={"userId": body.userId, "permission": body.permission, "granted": body.granted,
                           "expiresAt": body.expiresAt})
    return JSONResponse(rbac.grant_view(g), status_code=201)


@router.delete("/api/nno/grants/{grant_id}", status_code=204)
async def delete_grant(grant_id: str, request: Request, caller: Caller = Depends(require_authenticated)) -> None:
    async with iam_ctx(request).db.session() as s:
        g = await s.get(PermissionGrant, grant_id)
        if g is None:
            raise NNOError(404, "GRANT_NOT_FOUND", "Grant not found", {"grantId": grant_id})
        try:
            await require_org_admin(s, caller, g.org_id)
        except NNOError as exc:
            if exc.status == 404:
                raise NNOError(404, "GRANT_NOT_FOUND", "Grant not found", {"grantId": grant_id}) from exc
            raise
        await s.delete(g)
        audit.record(s, caller, "grant.delete", org_id=g.org_id, target_type="grant", target_id=g.id,
                     data={"userId": g.user_id, "permission": g.permission})


@router.post("/api/nno/permissions/check")
async def check_permission(body: PermissionCheckBody, request: Request,
                           caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    """Anyone may check their own permission; checking another user's takes an org admin, operator or
    service."""
    user_id = body.userId or caller.user_id
    if not user_id:
        raise NNOError(400, "VALIDATION_ERROR", "userId is required for non-user callers", {"field": "userId"})
    async with iam_ctx(request).db.session() as s:
        if user_id == caller.user_id and caller.kind == "user":
            await require_org_reader(s, caller, body.orgId)
        else:
            await require_org_admin(s, caller, body.orgId)
        allowed, reason = await rbac.check(s, user_id, body.orgId, body.permission)
    return {"allowed": allowed, "reason": reason, "userId": user_id, "orgId": body.orgId,
            "permission": body.permission}
