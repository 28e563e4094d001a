"""The Registry's HTTP routes, as the Registry sees them after the gateway strips its prefix:
`/api/v1/platforms/...` arrives as `/...`, `/api/v1/onboarding/...` as `/onboarding/...`.
Thin: parse, build the caller's `Access`, call the service layer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nno.kernel.errors import NNOError
from nno.kernel.identity import get_identity
from nno.kernel.pagination import Page
from nno.kernel.scopes import scope_guard
from nno.kernel.service import ServiceContext
from nno.registry.access import Access
from nno.registry.onboarding import OnboardingService
from nno.registry.records import RecordService
from nno.registry.schemas import (
    AuditOut,
    BuildStateOut,
    BuildStatePut,
    DnsRecordCreate,
    DnsRecordOut,
    Environment,
    FeatureActivate,
    FeatureOut,
    LifecycleEventOut,
    LifecycleRequest,
    OnboardingCreate,
    OnboardingOut,
    OnboardingPatch,
    PlatformCreate,
    PlatformOut,
    PlatformStatusOut,
    PlatformUpdate,
    ResourceCreate,
    ResourceOut,
    ResourceType,
    ResourceUpdate,
    SecretOut,
    SecretsPut,
    StackCreate,
    StackOut,
    StackUpdate,
    TenantCreate,
    TenantOrgRowOut,
    TenantOrgStatus,
    TenantOut,
    TenantUpdate,
)
from nno.registry.scopes import registry_scope
from nno.registry.service import PlatformService
from nno.registry.tenant_org_ops import TenantOrgOutboxService

Limit = Query(None, description="Page size, 1..100 (default 50)")
Cursor = Query(None, description="Opaque cursor from the previous page's pagination.nextCursor")


def _status_json(body: dict[str, Any], created: bool) -> JSONResponse:
    return JSONResponse(body, status_code=201 if created else 200)


def _found(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of an idempotent registration: besides its 201, it answers 200 with the
    record already there (undocumented, clients and schemathesis took the repeat for an error)."""
    return {200: {"model": model, "description": "Already registered: the existing record"}}


def install_routes(app: FastAPI, ctx: ServiceContext) -> None:
    platforms = PlatformService(ctx)
    records = RecordService(ctx)
    onboarding = OnboardingService(ctx)
    tenant_org_outbox = TenantOrgOutboxService(ctx)

    def access(request: Request) -> Access:
        return Access(get_identity(request), ctx.bindings)

    # Onboarding first, so `/onboarding/...` never reads as a platform id.
    # A scoped API key reaches only the routes its permissions name (`registry.scopes`).
    scoped = [Depends(scope_guard(registry_scope))]
    ob = APIRouter(prefix="/onboarding", tags=["onboarding"], dependencies=scoped)

    @ob.post("", status_code=201, response_model=OnboardingOut, summary="Start onboarding a new platform")
    async def start_onboarding(request: Request, body: OnboardingCreate) -> dict[str, Any]:
        return await onboarding.start(access(request), body)

    @ob.get("/{session_id}", response_model=OnboardingOut, summary="Get an onboarding session")
    async def get_onboarding(request: Request, session_id: str) -> dict[str, Any]:
        return await onboarding.get(access(request), session_id)

    @ob.patch("/{session_id}", response_model=OnboardingOut, summary="Report onboarding progress (services)")
    async def patch_onboarding(request: Request, session_id: str, body: OnboardingPatch) -> dict[str, Any]:
        return await onboarding.patch(access(request), session_id, body)

    # The rest of `/onboarding...` must not fall through to the `/{platform_id}` routes below.
    @ob.api_route("", methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def onboarding_collection_other_methods() -> None:
        raise NNOError(405, "METHOD_NOT_ALLOWED", "Method not allowed on this route", headers={"Allow": "POST"})

    @ob.api_route("/{session_id}", methods=["POST", "PUT", "DELETE"], include_in_schema=False)
    async def onboarding_session_other_methods(session_id: str) -> None:
        raise NNOError(405, "METHOD_NOT_ALLOWED", "Method not allowed on this route",
                       headers={"Allow": "GET, HEAD, PATCH"})

    @ob.api_route("/{session_id}/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                  include_in_schema=False)
    async def onboarding_unknown_route(session_id: str, rest: str) -> None:
        raise NNOError(404, "NOT_FOUND", "Route not found")

    app.include_router(ob)

    r = APIRouter(tags=["platforms"], dependencies=scoped)

    @r.get("/", response_model=Page[PlatformOut], summary="List platforms (cursor-paginated)")
    async def list_platforms(request: Request, limit: int | None = Limit, cursor: str | None = Cursor,
                             status: str | None = None) -> dict[str, Any]:
        return await platforms.list_platforms(access(request), limit=limit, cursor=cursor, status=status)

    @r.post("/", status_code=201, response_model=PlatformOut, summary="Create a new platform")
    async def create_platform(request: Request, body: PlatformCreate) -> dict[str, Any]:
        return await platforms.create_platform(access(request), body)

    @r.get("/by-slug/{slug}", response_model=PlatformOut, summary="Get a platform by slug")
    async def get_by_slug(request: Request, slug: str) -> dict[str, Any]:
        return await platforms.get_by_slug(access(request), slug)

    @r.get("/{platform_id}", response_model=PlatformOut, summary="Get a platform")
    async def get_platform(request: Request, platform_id: str) -> dict[str, Any]:
        return await platforms.get_platform(access(request), platform_id)

    @r.patch("/{platform_id}", response_model=PlatformOut, summary="Update a platform (not its status)")
    async def update_platform(request: Request, platform_id: str, body: PlatformUpdate) -> dict[str, Any]:
        return await platforms.update_platform(access(request), platform_id, body)

    @r.delete("/{platform_id}", response_model=PlatformOut, summary="Soft-delete a platform (action delete)")
    async def delete_platform(request: Request, platform_id: str) -> dict[str, Any]:
        return await platforms.transition(access(request), platform_id, "delete")

    @r.get("/{platform_id}/status", response_model=PlatformStatusOut, summary="A platform's status")
    async def get_status(request: Request, platform_id: str) -> dict[str, Any]:
        return await platforms.get_status(access(request), platform_id)

    @r.post("/{platform_id}/lifecycle", response_model=PlatformOut, summary="Apply a lifecycle action")
    async def lifecycle(request: Request, platform_id: str, body: LifecycleRequest) -> dict[str, Any]:
        return await platforms.transition(access(request), platform_id, body.action, body.reason)

    @r.get("/{platform_id}/lifecycle-events", response_model=Page[LifecycleEventOut],
           summary="Status history, newest first")
    async def lifecycle_events(request: Request, platform_id: str, limit: int | None = Limit,
                               cursor: str | None = Cursor) -> dict[str, Any]:
        return await records.list_lifecycle_events(access(request), platform_id, limit=limit, cursor=cursor)

    # tenants and sub-tenants
    @r.get("/{platform_id}/tenants", response_model=Page[TenantOut], summary="List tenants")
    async def list_tenants(request: Request, platform_id: str, limit: int | None = Limit,
                           cursor: str | None = Cursor) -> dict[str, Any]:
        return await platforms.list_tenants(access(request), platform_id, parent_id=None, limit=limit, cursor=cursor)

    @r.post("/{platform_id}/tenants", status_code=201, response_model=TenantOut, summary="Create a tenant")
    async def create_tenant(request: Request, platform_id: str, body: TenantCreate) -> dict[str, Any]:
        return await platforms.create_tenant(access(request), platform_id, body)

    @r.get("/{platform_id}/tenants/{tenant_id}", response_model=TenantOut, summary="Get a tenant or sub-tenant")
    async def get_tenant(request: Request, platform_id: str, tenant_id: str) -> dict[str, Any]:
        return await platforms.get_tenant(access(request), platform_id, tenant_id)

    @r.patch("/{platform_id}/tenants/{tenant_id}", response_model=TenantOut, summary="Update a tenant")
    async def update_tenant(request: Request, platform_id: str, tenant_id: str, body: TenantUpdate) -> dict[str, Any]:
        return await platforms.update_tenant(access(request), platform_id, tenant_id, body)

    @r.delete("/{platform_id}/tenants/{tenant_id}", response_model=TenantOut,
              summary="Soft-delete a tenant and its sub-tenants")
    async def delete_tenant(request: Request, platform_id: str, tenant_id: str) -> dict[str, Any]:
        return await platforms.delete_tenant(access(request), platform_id, tenant_id)

    @r.get("/{platform_id}/tenants/{tenant_id}/sub-tenants", response_model=Page[TenantOut],
           summary="List a tenant's sub-tenants")
    async def list_sub_tenants(request: Request, platform_id: str, tenant_id: str, limit: int | None = Limit,
                               cursor: str | None = Cursor) -> dict[str, Any]:
        return await platforms.list_tenants(access(request), platform_id, parent_id=tenant_id, limit=limit,
                                            cursor=cursor)

    @r.post("/{platform_id}/tenants/{tenant_id}/sub-tenants", status_code=201, response_model=TenantOut,
            summary="Create a sub-tenant")
    async def create_sub_tenant(request: Request, platform_id: str, tenant_id: str,
                                body: TenantCreate) -> dict[str, Any]:
        return await platforms.create_tenant(access(request), platform_id, body, parent_id=tenant_id)

    # tenants' organizations on the platform's auth Worker not yet delivered (admins, operators)
    @r.get("/{platform_id}/tenant-orgs", response_model=Page[TenantOrgRowOut],
           summary="Tenants whose organization is not yet on the platform's auth Worker")
    async def list_tenant_orgs(request: Request, platform_id: str, status: TenantOrgStatus | None = None,
                               limit: int | None = Limit, cursor: str | None = Cursor) -> dict[str, Any]:
        return await tenant_org_outbox.list_rows(access(request), platform_id, status=status, limit=limit,
                                                 cursor=cursor)

    @r.post("/{platform_id}/tenant-orgs/{row_id}/retry", response_model=TenantOrgRowOut,
            summary="Deliver a failed tenant organization again")
    async def retry_tenant_org(request: Request, platform_id: str, row_id: str) -> dict[str, Any]:
        return await tenant_org_outbox.retry(access(request), platform_id, row_id)

    # stacks
    @r.get("/{platform_id}/stacks", response_model=Page[StackOut], summary="List stacks")
    async def list_stacks(request: Request, platform_id: str, limit: int | None = Limit,
                          cursor: str | None = Cursor) -> dict[str, Any]:
        return await platforms.list_stacks(access(request), platform_id, limit=limit, cursor=cursor)

    @r.post("/{platform_id}/stacks", status_code=201, response_model=StackOut, summary="Create a stack")
    async def create_stack(request: Request, platform_id: str, body: StackCreate) -> dict[str, Any]:
        return await platforms.create_stack(access(request), platform_id, body)

    @r.get("/{platform_id}/stacks/{stack_id}", response_model=StackOut, summary="Get a stack")
    async def get_stack(request: Request, platform_id: str, stack_id: str) -> dict[str, Any]:
        return await platforms.get_stack(access(request), platform_id, stack_id)

    @r.patch("/{platform_id}/stacks/{stack_id}", response_model=StackOut, summary="Update a stack")
    async def update_stack(request: Request, platform_id: str, stack_id: str, body: StackUpdate) -> dict[str, Any]:
        return await platforms.update_stack(access(request), platform_id, stack_id, body)

    # resources and their secret status
    @r.get("/{platform_id}/resources", response_model=Page[ResourceOut], summary="List resources")
    async def list_resources(request: Request, platform_id: str, stackId: str | None = None,
                             entityId: str | None = None, type: ResourceType | None = None,
                             includeDeleted: bool = False, limit: int | None = Limit,
                             cursor: str | None = Cursor) -> dict[str, Any]:
        return await records.list_resources(access(request), platform_id, stack_id=stackId, entity_id=entityId,
                                            type_=type, include_deleted=includeDeleted, limit=limit, cursor=cursor)

    @r.post("/{platform_id}/resources", status_code=201, response_model=ResourceOut, responses=_found(ResourceOut),
            summary="Register a resource (services; idempotent by type and name)")
    async def register_resource(request: Request, platform_id: str, body: ResourceCreate) -> JSONResponse:
        out, created = await records.register_resource(access(request), platform_id, body)
        return _status_json(out, created)

    @r.get("/{platform_id}/resources/{resource_id}", response_model=ResourceOut, summary="Get a resource")
    async def get_resource(request: Request, platform_id: str, resource_id: str) -> dict[str, Any]:
        return await records.get_resource(access(request), platform_id, resource_id)

    @r.patch("/{platform_id}/resources/{resource_id}", response_model=ResourceOut,
             summary="Update a resource (services)")
    async def update_resource(request: Request, platform_id: str, resource_id: str,
                              body: ResourceUpdate) -> dict[str, Any]:
        return await records.update_resource(access(request), platform_id, resource_id, body)

    @r.delete("/{platform_id}/resources/{resource_id}", response_model=ResourceOut,
              summary="Mark a resource deleted (services)")
    async def delete_resource(request: Request, platform_id: str, resource_id: str) -> dict[str, Any]:
        return await records.delete_resource(access(request), platform_id, resource_id)

    @r.get("/{platform_id}/resources/{resource_id}/secrets", response_model=dict[str, list[SecretOut]],
           summary="Secret status of a resource")
    async def list_secrets(request: Request, platform_id: str, resource_id: str) -> dict[str, Any]:
        return await records.list_secrets(access(request), platform_id, resource_id)

    @r.put("/{platform_id}/resources/{resource_id}/secrets", response_model=dict[str, list[SecretOut]],
           summary="Record secret status (services; never values)")
    async def put_secrets(request: Request, platform_id: str, resource_id: str, body: SecretsPut) -> dict[str, Any]:
        return await records.put_secrets(access(request), platform_id, resource_id, body)

    # DNS
    @r.get("/{platform_id}/dns-records", response_model=Page[DnsRecordOut], summary="List DNS records")
    async def list_dns(request: Request, platform_id: str, stackId: str | None = None, limit: int | None = Limit,
                       cursor: str | None = Cursor) -> dict[str, Any]:
        return await records.list_dns(access(request), platform_id, stack_id=stackId, limit=limit, cursor=cursor)

    @r.post("/{platform_id}/dns-records", status_code=201, response_model=DnsRecordOut,
            responses=_found(DnsRecordOut), summary="Register a DNS record (services; idempotent by hostname)")
    async def register_dns(request: Request, platform_id: str, body: DnsRecordCreate) -> JSONResponse:
        out, created = await records.register_dns(access(request), platform_id, body)
        return _status_json(out, created)

    # features
    @r.get("/{platform_id}/features", response_model=Page[FeatureOut], summary="List feature activations")
    async def list_features(request: Request, platform_id: str, entityId: str | None = None,
                            environment: Environment | None = None, includeInactive: bool = False,
                            limit: int | None = Limit, cursor: str | None = Cursor) -> dict[str, Any]:
        return await records.list_features(access(request), platform_id, entity_id=entityId,
                                           environment=environment, include_inactive=includeInactive,
                                           limit=limit, cursor=cursor)

    @r.post("/{platform_id}/features", status_code=201, response_model=FeatureOut, responses=_found(FeatureOut),
            summary="Record a feature activation (services)")
    async def activate_feature(request: Request, platform_id: str, body: FeatureActivate) -> JSONResponse:
        out, created = await records.activate_feature(access(request), platform_id, body)
        return _status_json(out, created)

    @r.delete("/{platform_id}/features/{feature_id:path}", response_model=FeatureOut,
              summary="Record a feature deactivation (services)")
    async def deactivate_feature(request: Request, platform_id: str, feature_id: str, entityId: str | None = None,
                                 environment: Environment = "prod") -> dict[str, Any]:
        return await records.deactivate_feature(access(request), platform_id, feature_id, entity_id=entityId,
                                                 environment=environment)

    # build state, audit
    @r.get("/{platform_id}/build-state", response_model=dict[str, list[BuildStateOut]],
           summary="Repo and build state per environment")
    async def get_build_state(request: Request, platform_id: str) -> dict[str, Any]:
        return await records.get_build_state(access(request), platform_id)

    @r.put("/{platform_id}/build-state", response_model=BuildStateOut, summary="Record build state (services)")
    async def put_build_state(request: Request, platform_id: str, body: BuildStatePut) -> dict[str, Any]:
        return await records.put_build_state(access(request), platform_id, body)

    @r.get("/{platform_id}/audit", response_model=Page[AuditOut], summary="The platform's audit log, newest first")
    async def list_audit(request: Request, platform_id: str, limit: int | None = Limit,
                         cursor: str | None = Cursor,
                         action: str | None = Query(None, max_length=64, description="Actions containing this"),
                         actorType: str | None = Query(None, pattern="^(user|operator|apikey|service)$",
                                                       description="Only this kind of actor")) -> dict[str, Any]:
        return await records.list_audit(access(request), platform_id, limit=limit, cursor=cursor,
                                        action=action, actor_type=actorType)

    app.include_router(r)
