"""NNO operators (`nno.iam.operators`): listed, granted and revoked by operators and services only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from nno.iam import operators
from nno.iam.caller import Caller, iam_ctx, require_authenticated
from nno.iam.schemas import OperatorGrantBody
from nno.iam.views.common import ALREADY_SO

router = APIRouter(tags=["operators"])
UserId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/api/nno/operators")
async def list_operators(request: Request, caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return {"data": await operators.list_operators(iam_ctx(request), caller)}


@router.post("/api/nno/operators", status_code=201, responses=ALREADY_SO)
async def grant_operator(body: OperatorGrantBody, request: Request,
                         caller: Caller = Depends(require_authenticated)) -> JSONResponse:
    view, created = await operators.grant(iam_ctx(request), caller, body.userId, body.email)
    return JSONResponse(view, status_code=201 if created else 200)


@router.delete("/api/nno/operators/{user_id}")
async def revoke_operator(user_id: UserId, request: Request,
                          caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    return await operators.revoke(iam_ctx(request), caller, user_id)
