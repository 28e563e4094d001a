"""Per-platform auth apps only: the feature permission catalogue (`nno.iam.feature_permissions`).
Writes need an NNO service token for this platform; reads also a session of this platform."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from nno.iam import feature_permissions
from nno.iam.caller import iam_ctx, require_session
from nno.iam.schemas import FeaturePermissionsBody
from nno.iam.views.platform_admin import Authority, _service_authority, require_service_token

router = APIRouter(tags=["feature permissions"])
FeatureId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")]


async def _reader(request: Request) -> None:
    if await _service_authority(request) is None:
        await require_session(request)


@router.put("/api/nno/feature-permissions/{feature_id}")
async def register(feature_id: FeatureId, body: FeaturePermissionsBody, request: Request,
                   who: Authority = Depends(require_service_token)) -> dict[str, Any]:
    return await feature_permissions.register(iam_ctx(request), who.caller, feature_id, body.permissions)


@router.delete("/api/nno/feature-permissions/{feature_id}")
async def unregister(feature_id: FeatureId, request: Request,
                     who: Authority = Depends(require_service_token)) -> dict[str, Any]:
    return await feature_permissions.unregister(iam_ctx(request), who.caller, feature_id)


@router.get("/api/nno/feature-permissions", dependencies=[Depends(_reader)])
async def catalogue(request: Request, featureId: str | None = None) -> dict[str, Any]:
    data = await feature_permissions.catalogue(iam_ctx(request), featureId)
    return {"data": data, "total": len(data)}
