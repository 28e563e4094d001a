"""Per-platform auth apps only: the organization of each Registry tenant (Better Auth organizations
are NNO tenants).

The Registry's tenant outbox (`nno.registry.tenant_orgs`) calls these with an NNO service token for
this platform (`auth:{platformId}`) and nothing else: a session, even a platform-admin's, is refused.
Both are idempotent, so a delivery retried after a lost answer changes nothing more:

- `PUT /api/nno/tenant-orgs/{orgId}` `{name, slug}`: the organization with that id (the tenant's id)
  exists afterwards with that name; created with no members (the platform's admins invite them or
  join it from the console shell). If another organization already holds the slug, the new one takes
  `{slug}-{orgId}`; an existing organization keeps its slug (links to it stay valid).
- `DELETE /api/nno/tenant-orgs/{orgId}`: it is gone afterwards, with its members and invitations.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from nno.iam import audit, orgs
from nno.iam.caller import iam_ctx
from nno.iam.models import Organization
from nno.iam.schemas import Body, OrgName, Slug
from nno.iam.views.platform_admin import Authority, require_service_token
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError

router = APIRouter(tags=["organizations"])
PATH = "/api/nno/tenant-orgs/{org_id}"
_ORG_ID_RE = re.compile(r"^[a-z0-9]{1,32}$")
TENANT_ORG_TYPE = "tenant"


class TenantOrgBody(Body):
    name: OrgName
    slug: Slug


def _check_id(org_id: str) -> str:
    if not _ORG_ID_RE.match(org_id):
        raise NNOError(400, "VALIDATION_ERROR", "orgId is 1 to 32 characters of a-z and 0-9", {"field": "orgId"})
    return org_id


async def _free_slug(request: Request, slug: str, org_id: str) -> str:
    async with iam_ctx(request).db.session() as s:
        taken = (await s.execute(select(Organization.id).where(Organization.slug == slug))).scalar_one_or_none()
    return slug if taken in (None, org_id) else f"{slug[:63 - len(org_id) - 1]}-{org_id}"


@router.put(PATH)
async def put_tenant_org(org_id: str, body: TenantOrgBody, request: Request,
                         authority: Authority = Depends(require_service_token)) -> JSONResponse:
    _check_id(org_id)
    ctx = iam_ctx(request)
    slug = await _free_slug(request, body.slug, org_id)
    for _ in range(2):  # a concurrent delivery of the same tenant may insert first: then it is an update
        try:
            async with ctx.db.session() as s:
                org = await s.get(Organization, org_id)
                if org is not None:
                    if org.org_type != TENANT_ORG_TYPE:
                        raise NNOError(409, "NOT_A_TENANT_ORG", "That organization is not a tenant's",
                                       {"orgId": org_id})
                    changed = org.name != body.name
                    if changed:
                        audit.record(s, authority.caller, "org.update", org_id=org_id, target_type="organization",
                                     target_id=org_id, data={"name": body.name, "via": "registry-tenant"})
                        org.name = body.name
                    return JSONResponse({**orgs.org_view(org), "created": False, "changed": changed})
                org = Organization(id=org_id, name=body.name, slug=slug, org_type=TENANT_ORG_TYPE,
                                   data={"registryTenant": True}, created_at=now_ms())
                s.add(org)
                await s.flush()
                audit.record(s, authority.caller, "org.create", org_id=org_id, target_type="organization",
                             target_id=org_id, data={"slug": slug, "orgType": TENANT_ORG_TYPE,
                                                     "via": "registry-tenant"})
                view: dict[str, Any] = orgs.org_view(org)
            return JSONResponse({**view, "created": True, "changed": True}, status_code=201)
        except IntegrityError:
            slug = await _free_slug(request, body.slug, org_id)
    raise NNOError(409, "SLUG_TAKEN", "No free slug for the tenant's organization", {"slug": body.slug})


@router.delete(PATH)
async def delete_tenant_org(org_id: str, request: Request,
                            authority: Authority = Depends(require_service_token)) -> dict[str, Any]:
    _check_id(org_id)
    ctx = iam_ctx(request)
    async with ctx.db.session() as s:
        org = await s.get(Organization, org_id)
    if org is None:
        return {"id": org_id, "deleted": False}
    if org.org_type != TENANT_ORG_TYPE:
        raise NNOError(409, "NOT_A_TENANT_ORG", "That organization is not a tenant's", {"orgId": org_id})
    try:
        await orgs.delete_org(ctx, authority.caller, org_id)
    except NNOError as exc:
        if exc.status != 404:
            raise
        return {"id": org_id, "deleted": False}
    return {"id": org_id, "deleted": True}
