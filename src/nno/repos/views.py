"""The CLI Service's routes (mounted at its root; the gateway strips `/api/v1/cli`). Thin: check
the caller, call `service`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from nno.kernel.identity import Identity, get_identity
from nno.kernel.service import ServiceContext
from nno.repos import service
from nno.repos.access import require_read, require_write
from nno.repos.schemas import (
    ActivateFeature,
    ApplyFeatures,
    BuildLog,
    BuildOut,
    CreateRepo,
    DeactivateFeature,
    FeatureChange,
    FeaturesApplied,
    RepoCreated,
    RepoDeleted,
    RepoInfo,
    TriggerBuild,
)

router = APIRouter(prefix="/platforms", tags=["cli"])
Caller = Annotated[Identity, Depends(get_identity)]
PlatformId = Annotated[str, Query(pattern=r"^[a-z0-9]{10}$")]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


@router.post("", response_model=RepoCreated, status_code=201, summary="Create the platform repository (idempotent)")
async def create_repo(body: CreateRepo, request: Request, identity: Caller) -> JSONResponse:
    await require_write(identity, _ctx(request).bindings)
    answer, created = await service.create_repo(_ctx(request), body)
    return JSONResponse(answer, status_code=201 if created else 200)


@router.get("/{platform_id}/repo", response_model=RepoInfo, summary="The platform repository")
async def get_repo(platform_id: str, request: Request, identity: Caller) -> dict[str, Any]:
    await require_read(identity, platform_id, _ctx(request).bindings)
    return service.repo_info(_ctx(request), await service.get_repo_row(_ctx(request), platform_id))


@router.post("/{platform_id}/features/activate", response_model=FeatureChange,
             summary="Commit a feature's activation (one commit, one build)")
async def activate(platform_id: str, body: ActivateFeature, request: Request, identity: Caller) -> dict[str, Any]:
    await require_write(identity, _ctx(request).bindings, platform_id)
    return await service.activate(_ctx(request), platform_id, body)


@router.post("/{platform_id}/features/deactivate", response_model=FeatureChange,
             summary="Commit a feature's deactivation (one commit, one build)")
async def deactivate(platform_id: str, body: DeactivateFeature, request: Request, identity: Caller) -> dict[str, Any]:
    await require_write(identity, _ctx(request).bindings, platform_id)
    return await service.deactivate(_ctx(request), platform_id, body)


@router.post("/{platform_id}/features/apply", response_model=FeaturesApplied,
             summary="Commit several features' (de)activation together (one commit, one build)")
async def apply(platform_id: str, body: ApplyFeatures, request: Request, identity: Caller) -> dict[str, Any]:
    await require_write(identity, _ctx(request).bindings, platform_id)
    return await service.apply(_ctx(request), platform_id, body)


@router.delete("/{platform_id}", response_model=RepoDeleted,
               summary="Remove the platform repository and its build history (deprovisioning)")
async def delete_repo(platform_id: str, request: Request, identity: Caller) -> dict[str, Any]:
    await require_write(identity, _ctx(request).bindings, platform_id)
    return await service.delete_repo(_ctx(request), platform_id)


@router.get("/{platform_id}/build-status", summary="The latest build and the one the site serves")
async def build_status(platform_id: str, request: Request, identity: Caller) -> dict[str, Any]:
    await require_read(identity, platform_id, _ctx(request).bindings)
    return await service.build_status(_ctx(request), platform_id)


@router.get("/{platform_id}/builds", response_model=dict[str, list[BuildOut]], summary="Build history")
async def list_builds(platform_id: str, request: Request, identity: Caller,
                      limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    await require_read(identity, platform_id, _ctx(request).bindings)
    return {"data": await service.list_builds(_ctx(request), platform_id, limit)}


@router.get("/{platform_id}/builds/{build_id}", response_model=BuildLog, summary="One build with its log")
async def get_build(platform_id: str, build_id: str, request: Request, identity: Caller) -> dict[str, Any]:
    await require_read(identity, platform_id, _ctx(request).bindings)
    return await service.get_build(_ctx(request), platform_id, build_id)


@router.post("/{platform_id}/builds", response_model=BuildOut, status_code=202,
             summary="Build the repository's head again (after a push)")
async def trigger_build(platform_id: str, request: Request, identity: Caller,
                        body: TriggerBuild | None = None) -> dict[str, Any]:
    await require_write(identity, _ctx(request).bindings, platform_id)
    return await service.trigger_build(_ctx(request), platform_id, body.environment if body else None,
                                       body.commitSha if body else None)
