"""`/api/nno/apikey`: create (the full key shown once), list, revoke, and the service-only validate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from nno.iam import apikeys
from nno.iam.caller import Caller, iam_ctx, require_authenticated, require_service
from nno.iam.schemas import ApiKeyCreateBody, ApiKeyValidateBody

router = APIRouter(tags=["apikeys"])


@router.post("/api/nno/apikey", status_code=201)
async def create_key(body: ApiKeyCreateBody, request: Request,
                     caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    return JSONResponse(await apikeys.create(iam_ctx(request), caller, body), status_code=201)


@router.get("/api/nno/apikey")
async def list_keys(request: Request, platformId: str | None = None,
                    caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return {"data": await apikeys.list_keys(iam_ctx(request), caller, platformId)}


@router.get("/api/nno/apikey/current")
async def current_key(request: Request, caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await apikeys.current(iam_ctx(request), caller)


@router.post("/api/nno/apikey/validate")
async def validate_key(body: ApiKeyValidateBody, request: Request,
                       caller: Caller = Depends(require_service)) -> dict[str, Any]:
    return await apikeys.validate(iam_ctx(request), caller, body.key)


@router.delete("/api/nno/apikey/{key_id}")
async def revoke_key(key_id: str, request: Request,
                     caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await apikeys.revoke(iam_ctx(request), caller, key_id)


@router.post("/api/nno/apikey/{key_id}/revoke")
async def revoke_key_post(key_id: str, request: Request,
                          caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await apikeys.revoke(iam_ctx(request), caller, key_id)
