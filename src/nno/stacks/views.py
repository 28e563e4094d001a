"""Stack Registry routes, as the service sees them after the gateway strips `/api/v1/stacks`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from nno.kernel.identity import Identity, get_identity
from nno.stacks.schemas import (
    Created,
    TemplateCreate,
    TemplateDetail,
    TemplateList,
    TemplateOut,
    TemplateUpdate,
    VersionList,
    VersionOut,
    VersionPublish,
)
from nno.stacks.service import StackRegistry

Caller = Annotated[Identity, Depends(get_identity)]
Name = Annotated[str, Path(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=64, description="Template name")]
Version = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z.+-]+$",
                              description="A published version, or `latest`")]
IncludeDeprecated = Annotated[bool, Query(description="Also list deprecated entries")]


def _registry(request: Request) -> StackRegistry:
    registry: StackRegistry = request.app.state.registry
    return registry


Registry = Annotated[StackRegistry, Depends(_registry)]

router = APIRouter(tags=["stacks"])


@router.get("/", response_model=TemplateList, summary="List stack templates (active ones unless asked)")
async def list_templates(
    registry: Registry, ident: Caller, includeDeprecated: IncludeDeprecated = False,
    domain: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 100, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    return await registry.list_templates(ident, include_deprecated=includeDeprecated, domain=domain,
                                         limit=limit, offset=offset)


@router.post("/", status_code=201, response_model=Created, summary="Create a stack template (operators)",
             responses={409: {"description": "A template with this name exists"}})
async def create_template(registry: Registry, ident: Caller, body: TemplateCreate) -> JSONResponse:
    return JSONResponse(await registry.create_template(ident, body), status_code=201)


@router.get("/{name}", response_model=TemplateDetail, summary="A template with its latest version")
async def get_template(registry: Registry, ident: Caller, name: Name) -> dict[str, Any]:
    return await registry.get_template(ident, name)


@router.patch("/{name}", response_model=TemplateOut, summary="Update a template (operators)")
async def update_template(registry: Registry, ident: Caller, name: Name, body: TemplateUpdate) -> dict[str, Any]:
    return await registry.update_template(ident, name, body)


@router.get("/{name}/versions", response_model=VersionList, summary="A template's versions, newest first")
async def list_versions(registry: Registry, ident: Caller, name: Name,
                        includeDeprecated: IncludeDeprecated = False) -> dict[str, Any]:
    return await registry.list_versions(ident, name, include_deprecated=includeDeprecated)


@router.post("/{name}/versions", status_code=201, response_model=VersionOut,
             summary="Publish a version (operators; immutable once published)",
             responses={409: {"description": "This version is already published"}})
async def publish_version(registry: Registry, ident: Caller, name: Name, body: VersionPublish) -> JSONResponse:
    return JSONResponse(await registry.publish(ident, name, body), status_code=201)


@router.get("/{name}/versions/{version}", response_model=VersionOut, summary="One version (or `latest`)")
async def get_version(registry: Registry, ident: Caller, name: Name, version: Version) -> dict[str, Any]:
    return await registry.get_version(ident, name, version)


@router.post("/{name}/versions/{version}/deprecate", response_model=VersionOut,
             summary="Deprecate a version (operators); latest_version moves to the greatest active one")
async def deprecate_version(registry: Registry, ident: Caller, name: Name, version: Version) -> dict[str, Any]:
    return await registry.deprecate_version(ident, name, version)
