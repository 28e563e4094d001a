"""Better Auth-style account and session routes (`/api/auth/*`) and the caller's session list
(`/api/sessions`). Shared by the global IAM and the per-platform auth apps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import or_, select
from starlette.background import BackgroundTask
from starlette.responses import Response

from nno.iam import accounts, audit, password_reset
from nno.iam.caller import Caller, iam_ctx, presented_token, require_session, require_user, resolve_caller
from nno.iam.models import Session
from nno.iam.schemas import (
    ChangePasswordBody,
    MagicLinkBody,
    ProfileUpdate,
    RequestPasswordResetBody,
    ResetPasswordBody,
    RevokeSessionBody,
    SignInBody,
    SignUpBody,
    UpdateUserBody,
)
from nno.iam.sessions import live_session, revoke_session, revoke_user_sessions, session_row_view, user_view
from nno.iam.views.common import clear_session_cookie, safe_redirect, set_session_cookie
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import token_hash
from nno.kernel.redirects import with_query

router = APIRouter(tags=["auth"])


def _signed_in_response(request: Request, signed: accounts.SignedIn, extra: dict[str, Any] | None = None,
                        status: int = 200) -> JSONResponse:
    ctx = iam_ctx(request)
    body = {"token": signed.token, "user": user_view(signed.user),
            "session": {**session_row_view(signed.session), "token": signed.token}, **(extra or {})}
    response = JSONResponse(body, status_code=status)
    set_session_cookie(response, ctx, signed.token, signed.session)
    return response


@router.post("/api/auth/sign-up/email")
async def sign_up(body: SignUpBody, request: Request, caller: Caller = Depends(resolve_caller)) -> Response:
    signed = await accounts.sign_up(iam_ctx(request), body, caller)
    return _signed_in_response(request, signed)


@router.post("/api/auth/sign-in/email")
async def sign_in(body: SignInBody, request: Request, caller: Caller = Depends(resolve_caller)) -> Response:
    signed = await accounts.sign_in(iam_ctx(request), body, caller)
    url = safe_redirect(iam_ctx(request), body.callbackURL)
    return _signed_in_response(request, signed, {"redirect": url is not None, "url": url})


@router.post("/api/auth/sign-out")
async def sign_out(request: Request, caller: Caller = Depends(require_session)) -> Response:
    ctx = iam_ctx(request)
    assert caller.session is not None
    async with ctx.db.session() as s:
        await revoke_session(s, caller.session.id)
        audit.record(s, caller, "auth.sign_out", target_type="session", target_id=caller.session.id)
    response = JSONResponse({"success": True})
    clear_session_cookie(response, ctx)
    return response


@router.get("/api/auth/get-session")
async def get_session(request: Request) -> Response:
    """Better Auth's answer: the session (with its token) and user, or `null` (200) when the request
    presents no live session."""
    ctx = iam_ctx(request)
    token = presented_token(request)
    found = None
    if token:
        async with ctx.db.session() as s:
            found = await live_session(s, token)
    if found is None:
        return JSONResponse(None)
    session, user = found
    return JSONResponse({"session": {**session_row_view(session), "token": token}, "user": user_view(user)})


@router.post("/api/auth/update-user")
async def update_user(body: UpdateUserBody, request: Request,
                      caller: Caller = Depends(require_user)) -> dict[str, Any]:
    if body.email is not None:
        # Better Auth changes an address only through its change-email flow, which proves the new one.
        raise NNOError(400, "EMAIL_CAN_NOT_BE_UPDATED", "Email can not be updated", {"field": "email"})
    changes = ProfileUpdate.model_validate(body.model_dump(exclude_unset=True, exclude={"email"}))
    if not changes.model_fields_set:
        raise NNOError(400, "NO_FIELDS_TO_UPDATE", "No fields to update")
    await accounts.update_profile(iam_ctx(request), caller, changes)
    return {"status": True}


@router.post("/api/auth/sign-in/magic-link")
async def magic_link(body: MagicLinkBody, request: Request,
                     caller: Caller = Depends(resolve_caller)) -> dict[str, Any]:
    ctx = iam_ctx(request)
    # Judged here too, so a mailed link never carries a target the verify step would refuse.
    await accounts.request_magic_link(ctx, body, caller, safe_redirect(ctx, body.callbackURL))
    return {"status": True}


@router.get("/api/auth/magic-link/verify")
async def magic_link_verify(request: Request, token: str = "", callbackURL: str | None = None,
                            caller: Caller = Depends(resolve_caller)) -> Response:
    if not token or len(token) > 512:
        raise NNOError(400, "VALIDATION_ERROR", "token is required", {"field": "token"})
    ctx = iam_ctx(request)
    signed = await accounts.verify_magic_link(ctx, token, caller)
    target = safe_redirect(ctx, callbackURL)
    if target:
        response: Response = RedirectResponse(target, status_code=302)
        set_session_cookie(response, ctx, signed.token, signed.session)
        return response
    return _signed_in_response(request, signed)


@router.post("/api/auth/request-password-reset")
@router.post("/api/auth/forget-password")  # Better Auth's older name
async def request_password_reset(body: RequestPasswordResetBody, request: Request,
                                 caller: Caller = Depends(resolve_caller)) -> Response:
    ctx = iam_ctx(request)
    mail = await password_reset.request_reset(ctx, body, caller, safe_redirect(ctx, body.redirectTo))
    # Delivered after the response is sent, so an SMTP round trip does not tell known addresses apart.
    return JSONResponse({"status": True, "message": password_reset.REQUESTED_MESSAGE},
                        background=BackgroundTask(ctx.mailer.deliver, mail) if mail is not None else None)


@router.get("/api/auth/reset-password")
@router.get("/api/auth/reset-password/{token}")
async def reset_password_link(request: Request, token: str = "", callbackURL: str | None = None) -> Response:
    """The mailed link. With a `callbackURL` of this installation, redirects there with `?token=` (or
    `?error=INVALID_TOKEN`), as Better Auth does; without one, answers whether the token is usable.
    Reads only: the token is spent by `POST /api/auth/reset-password`."""
    ctx = iam_ctx(request)
    problem = await password_reset.check_token(ctx, token)
    target = safe_redirect(ctx, callbackURL)
    if target:
        return RedirectResponse(with_query(target, {"error": "INVALID_TOKEN"} if problem else {"token": token}),
                                status_code=302)
    if problem:
        raise password_reset.token_error(problem)
    return JSONResponse({"status": True, "token": token})


@router.post("/api/auth/reset-password")
async def reset_password(body: ResetPasswordBody, request: Request, token: str | None = None,
                         caller: Caller = Depends(resolve_caller)) -> dict[str, Any]:
    await password_reset.reset_password(iam_ctx(request), body.token or token, body.newPassword, caller)
    return {"status": True}


@router.get("/api/auth/profile")
async def profile(request: Request, caller: Caller = Depends(require_user)) -> dict[str, Any]:
    assert caller.user_id
    return {"user": user_view(await accounts.get_user(iam_ctx(request), caller.user_id))}


@router.patch("/api/auth/profile")
async def update_profile(body: ProfileUpdate, request: Request,
                         caller: Caller = Depends(require_user)) -> dict[str, Any]:
    return {"user": user_view(await accounts.update_profile(iam_ctx(request), caller, body))}


@router.post("/api/auth/change-password")
async def change_password(body: ChangePasswordBody, request: Request,
                          caller: Caller = Depends(require_session)) -> dict[str, Any]:
    """Better Auth's answer: `token` is the session to go on with when the others were revoked (the
    caller's own, which stays live), else null."""
    user = await accounts.change_password(iam_ctx(request), caller, body)
    return {"status": True, "token": caller.token if body.revokeOtherSessions else None,
            "user": user_view(user)}


async def _live_sessions(request: Request, user_id: str | None) -> list[Session]:
    async with iam_ctx(request).db.session() as s:
        return list((await s.execute(select(Session).where(
            Session.user_id == user_id, Session.expires_at > now_ms())
            .order_by(Session.created_at.desc(), Session.id))).scalars().all())


@router.get("/api/sessions")
async def list_sessions(request: Request, caller: Caller = Depends(require_session)) -> dict[str, Any]:
    assert caller.session is not None
    rows = await _live_sessions(request, caller.user_id)
    return {"data": [session_row_view(r, current_id=caller.session.id) for r in rows]}


@router.get("/api/auth/list-sessions")
async def list_sessions_better_auth(request: Request,
                                    caller: Caller = Depends(require_session)) -> list[dict[str, Any]]:
    """Better Auth's list. Only token digests are stored, so a session other than the caller's own
    carries its id as its `token`: a handle `revoke-session` takes, never a credential."""
    assert caller.session is not None
    current_id = caller.session.id
    return [{**session_row_view(r), "token": caller.token if r.id == current_id else r.id}
            for r in await _live_sessions(request, caller.user_id)]


@router.post("/api/auth/revoke-session")
async def revoke_one_session(body: RevokeSessionBody, request: Request,
                             caller: Caller = Depends(require_session)) -> dict[str, Any]:
    """Revokes the caller's own session named by token (or `list-sessions` handle). As in Better Auth,
    the answer is the same whether or not it named one of theirs, so it tells nothing of others'."""
    async with iam_ctx(request).db.session() as s:
        row = (await s.execute(select(Session).where(
            or_(Session.token_hash == token_hash(body.token), Session.id == body.token),
            Session.user_id == caller.user_id))).scalars().first()
        if row is not None:
            await revoke_session(s, row.id)
            audit.record(s, caller, "session.revoke", target_type="session", target_id=row.id)
    return {"status": True}


@router.post("/api/auth/revoke-sessions")
async def revoke_all_sessions(request: Request, caller: Caller = Depends(require_session)) -> Response:
    ctx = iam_ctx(request)
    assert caller.user_id
    async with ctx.db.session() as s:
        count = await revoke_user_sessions(s, caller.user_id)
        audit.record(s, caller, "session.revoke_all", target_type="user", target_id=caller.user_id,
                     data={"revoked": count})
    response = JSONResponse({"status": True})
    clear_session_cookie(response, ctx)
    return response


@router.delete("/api/sessions/{session_id}")
async def delete_session(session_id: str, request: Request,
                         caller: Caller = Depends(require_session)) -> dict[str, Any]:
    ctx = iam_ctx(request)
    async with ctx.db.session() as s:
        row = await s.get(Session, session_id)
        if row is None or row.user_id != caller.user_id:
            raise NNOError(404, "SESSION_NOT_FOUND", "Session not found", {"sessionId": session_id})
        await revoke_session(s, session_id)
        audit.record(s, caller, "session.revoke", target_type="session", target_id=session_id)
    return {"success": True, "revoked": 1}


@router.post("/api/sessions/revoke-others")
@router.post("/api/auth/revoke-other-sessions")
async def revoke_others(request: Request, caller: Caller = Depends(require_session)) -> dict[str, Any]:
    assert caller.session is not None and caller.user_id
    async with iam_ctx(request).db.session() as s:
        count = await revoke_user_sessions(s, caller.user_id, except_id=caller.session.id)
        audit.record(s, caller, "session.revoke_others", target_type="user", target_id=caller.user_id,
                     data={"revoked": count})
    return {"status": True, "success": True, "revoked": count}
