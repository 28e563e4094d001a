"""NNO-only service routes: bootstrap, service tokens, and the mail outbox for operators."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from nno.iam import bootstrap, service_tokens
from nno.iam.access import require_privileged
from nno.iam.caller import Caller, iam_ctx, require_authenticated, require_service
from nno.iam.models import MailOutbox
from nno.iam.schemas import BootstrapBody, ServiceTokenBody, ServiceTokenVerifyBody
from nno.kernel.errors import NNOError
from nno.kernel.identity import get_identity
from nno.kernel.pagination import check_limit

router = APIRouter(tags=["admin"])
DEV_OUTBOX_NOTICE = ("Development outbox: these mails hold live sign-in and reset links in clear. Never use it "
                     "on a shared install: set NNO_SMTP_URL (and leave NNO_DEV_OUTBOX unset).")
REDACTED_NOTICE = "Live sign-in and reset links are never kept: they are redacted here."


@router.get("/api/nno/bootstrap")
async def bootstrap_status(request: Request, _: Caller = Depends(require_service)) -> dict[str, Any]:
    return {"bootstrapped": await bootstrap.is_bootstrapped(iam_ctx(request))}


@router.post("/api/nno/bootstrap", status_code=201)
async def run_bootstrap(body: BootstrapBody, request: Request,
                        caller: Caller = Depends(require_service)) -> JSONResponse:
    if get_identity(request).auth_type == "dev" and not _from_loopback(request):
        # The operator made here keeps its rights once AUTH_API_KEY is set: never from another machine.
        raise NNOError(403, "FORBIDDEN", "Without AUTH_API_KEY (local-dev mode) the first operator can only be "
                       "created from the server's own machine; or set AUTH_API_KEY and pass it as the service key")
    return JSONResponse(await bootstrap.bootstrap(iam_ctx(request), caller, body), status_code=201)


def _from_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.post("/api/nno/service-token")
async def mint_service_token(request: Request, body: ServiceTokenBody | None = None,
                             _: Caller = Depends(require_service)) -> dict[str, Any]:
    body = body or ServiceTokenBody()
    token, expires_at = service_tokens.mint(iam_ctx(request).settings, subject=body.subject,
                                            audience=body.audience, ttl_s=body.ttlSeconds)
    return {"token": token, "tokenType": "Bearer", "expiresIn": body.ttlSeconds, "expiresAt": expires_at}


@router.post("/api/nno/service-token/verify")
async def verify_service_token(body: ServiceTokenVerifyBody, request: Request,
                               _: Caller = Depends(require_service)) -> dict[str, Any]:
    claims = service_tokens.verify(iam_ctx(request).settings, body.token, audience=body.audience)
    return {"valid": True, "claims": claims}


@router.get("/api/nno/mail/outbox")
async def mail_outbox(request: Request, to: str | None = None, limit: int | None = None,
                      caller: Caller = Depends(require_authenticated)) -> dict[str, Any]:
    """Recent outgoing mail (newest first), for operators. Live sign-in and reset links are shown only
    by the development outbox (`devOutbox`: how a local install without SMTP reads its magic links);
    otherwise they are redacted."""
    size = check_limit(limit)
    ctx = iam_ctx(request)
    async with ctx.db.session() as s:
        await require_privileged(s, caller)
        q = select(MailOutbox)
        if to:
            q = q.where(MailOutbox.to_address == to.lower())
        rows = (await s.execute(q.order_by(MailOutbox.created_at.desc(), MailOutbox.id).limit(size))
                ).scalars().all()
    return {"data": [{"id": m.id, "kind": m.kind, "to": m.to_address, "subject": m.subject, "body": m.body,
                      "status": m.status, "error": m.error, "createdAt": m.created_at, "sentAt": m.sent_at}
                     for m in rows],
            "devOutbox": ctx.mailer.dev_outbox,
            "notice": DEV_OUTBOX_NOTICE if ctx.mailer.dev_outbox else REDACTED_NOTICE}
