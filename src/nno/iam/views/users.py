"""`GET /api/nno/users/{userId}`: a user's address and name for NNO services (contracts §3).

Service only (the static key, or a binding call as a service): services that hold a user id, such as
a platform's `ownerUserId`, learn the address from here instead of acting for the user. People read
their own account at `/api/auth/profile`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from nno.iam.caller import Caller, iam_ctx, require_service
from nno.iam.models import User
from nno.kernel.errors import NNOError

router = APIRouter(tags=["users"])

# Ids IAM issues are NanoIDs; this also admits the longer alphanumeric ids of imported accounts.
UserId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def service_user_view(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "emailVerified": user.email_verified,
            "createdAt": user.created_at}


@router.get("/api/nno/users/{user_id}")
async def get_user(user_id: UserId, request: Request, _: Caller = Depends(require_service)) -> dict[str, Any]:
    async with iam_ctx(request).db.session() as s:
        user = await s.get(User, user_id)
    if user is None:
        raise NNOError(404, "USER_NOT_FOUND", "No user with this id", {"userId": user_id})
    return service_user_view(user)
