"""OAuth 2.0 device authorization grant (RFC 8628) for `nno login`.

The device code is a bearer secret (stored as its digest); the user code is 8 characters from an
alphabet without look-alikes (no 0/O, 1/I/L), shown as `ABCD-2345`. Codes live 30 minutes; clients
poll every 5 s, and a client that polls faster is told `slow_down` and its interval grows by 5 s.
Approval mints a normal session, handed out once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam import audit
from nno.iam.caller import Caller, current_session
from nno.iam.context import DEVICE_CODE_TTL_S, DEVICE_POLL_INTERVAL_S, IAMContext
from nno.iam.models import DeviceCode
from nno.iam.security import new_secret
from nno.iam.sessions import create_session, lock_user, session_is_live
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id, token_hash

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP_S = 5
DEFAULT_CLIENT_ID = "nno-cli"


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(raw: str | None) -> str | None:
    """What a person typed -> the stored form, or None if it cannot be a user code. Case, spaces and
    hyphens do not matter."""
    if raw is None:
        return None
    code = "".join(ch for ch in raw.upper() if ch not in " -\t")
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code


class DeviceGrantError(Exception):
    """An RFC 8628 §3.5 / RFC 6749 §5.2 error answer: 400 `{"error": ..., "error_description": ...}`."""

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(error)


@dataclass
class DeviceInfo:
    user_code: str
    client_id: str
    scope: str | None
    status: str
    expires_at: int

    def view(self) -> dict[str, Any]:
        return {"userCode": format_user_code(self.user_code), "clientId": self.client_id, "scope": self.scope,
                "status": self.status, "expiresAt": self.expires_at}


async def request_code(ctx: IAMContext, caller: Caller, client_id: str | None, scope: str | None
                       ) -> dict[str, Any]:
    client = (client_id or DEFAULT_CLIENT_ID)[:100]
    device_code, digest = new_secret()
    now = now_ms()
    for _ in range(5):  # a user-code collision is astronomically rare; retry anyway
        user_code = new_user_code()
        try:
            async with ctx.db.session() as s:
                row = DeviceCode(id=new_id(), device_code_hash=digest, user_code=user_code, client_id=client,
                                 scope=(scope or None) and scope[:500], status="pending",
                                 interval_s=DEVICE_POLL_INTERVAL_S, expires_at=now + DEVICE_CODE_TTL_S * 1000,
                                 created_at=now)
                s.add(row)
                audit.record(s, caller, "device.code", target_type="device", target_id=row.id,
                             data={"clientId": client})
            break
        except IntegrityError:
            continue
    else:
        raise NNOError(503, "SERVICE_UNAVAILABLE", "Could not allocate a user code; retry")
    verification_uri = f"{ctx.public_base}/activate"
    shown = format_user_code(user_code)
    return {"device_code": device_code, "user_code": shown, "verification_uri": verification_uri,
            "verification_uri_complete": f"{verification_uri}?user_code={shown}",
            "expires_in": DEVICE_CODE_TTL_S, "interval": DEVICE_POLL_INTERVAL_S}


async def poll(ctx: IAMContext, caller: Caller, grant_type: str | None, device_code: str | None,
               client_id: str | None) -> dict[str, Any]:
    if not grant_type or not device_code:
        raise DeviceGrantError("invalid_request", "grant_type and device_code are required")
    if grant_type != GRANT_TYPE:
        raise DeviceGrantError("unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
    now = now_ms()
    error: DeviceGrantError | None = None
    result: dict[str, Any] | None = None
    async with ctx.db.session() as s:
        row = (await s.execute(select(DeviceCode).where(DeviceCode.device_code_hash == token_hash(device_code)))
               ).scalar_one_or_none()
        if row is None or row.status == "consumed" or (client_id and client_id != row.client_id):
            error = DeviceGrantError("invalid_grant", "The device code is not valid")
        elif row.expires_at <= now:
            error = DeviceGrantError("expired_token", "The device code has expired; start again")
        elif row.last_polled_at is not None and now - row.last_polled_at < row.interval_s * 1000:
            row.interval_s += SLOW_DOWN_STEP_S
            row.last_polled_at = now
            error = DeviceGrantError("slow_down", f"Polling too fast; wait {row.interval_s} seconds between polls")
        else:
            row.last_polled_at = now
            if row.status == "denied":
                error = DeviceGrantError("access_denied", "The request was denied")
            elif row.status == "pending":
                error = DeviceGrantError("authorization_pending", "Waiting for the user to approve")
            elif await _collect(s, row):
                assert row.user_id
                token, session = create_session(s, row.user_id, method="device", ip=caller.ip,
                                                user_agent=caller.user_agent)
                audit.record(s, caller, "auth.sign_in", actor_id=row.user_id, target_type="session",
                             target_id=session.id, data={"method": "device", "clientId": row.client_id})
                result = {"access_token": token, "token_type": "Bearer",
                          "expires_in": (session.expires_at - now) // 1000, "scope": row.scope or ""}
            else:  # revoked since it was approved (the approving account's credentials were)
                error = DeviceGrantError("access_denied", "The request was denied")
    if error is not None:
        raise error
    assert result is not None
    return result


async def _collect(s: AsyncSession, row: DeviceCode) -> bool:
    """Mark an approved code consumed, in one conditional UPDATE: False when it is no longer approved
    (collected by a concurrent poll, or denied by a revocation since this poll read it). Its row lock
    orders this poll against a revocation: the one that comes second sees what the first did."""
    done = await s.execute(update(DeviceCode).where(DeviceCode.id == row.id, DeviceCode.status == "approved")
                           .values(status="consumed").execution_options(synchronize_session=False))
    return getattr(done, "rowcount", 0) == 1


async def _pending(ctx: IAMContext, raw_code: str | None) -> DeviceCode:
    code = normalize_user_code(raw_code)
    if code is None:
        raise NNOError(400, "INVALID_USER_CODE", "That is not a valid code (it looks like ABCD-2345)")
    async with ctx.db.session() as s:
        row = (await s.execute(select(DeviceCode).where(DeviceCode.user_code == code))).scalar_one_or_none()
    if row is None:
        raise NNOError(404, "USER_CODE_NOT_FOUND", "No device is waiting for this code")
    if row.expires_at <= now_ms():
        raise NNOError(410, "USER_CODE_EXPIRED", "This code has expired; start again on your device")
    if row.status != "pending":
        raise NNOError(409, "USER_CODE_USED", f"This code was already {row.status}")
    return row


async def describe(ctx: IAMContext, raw_code: str | None) -> DeviceInfo:
    row = await _pending(ctx, raw_code)
    return DeviceInfo(row.user_code, row.client_id, row.scope, row.status, row.expires_at)


async def claim(ctx: IAMContext, caller: Caller, raw_code: str | None) -> DeviceInfo:
    """Better Auth's `GET /device`: the signed-in caller looks at a pending code and so claims it (a
    code claimed by one account is approved or denied by that account alone)."""
    found = await _pending(ctx, raw_code)
    assert caller.user_id
    async with ctx.db.session() as s:
        await s.execute(update(DeviceCode).where(
            DeviceCode.id == found.id, DeviceCode.status == "pending", DeviceCode.user_id.is_(None))
            .values(user_id=caller.user_id).execution_options(synchronize_session=False))
        row = await s.get(DeviceCode, found.id)
    assert row is not None
    if row.user_id != caller.user_id:
        raise NNOError(403, "ACCESS_DENIED", "Another account is reviewing this code")
    return DeviceInfo(row.user_code, row.client_id, row.scope, row.status, row.expires_at)


async def decide(ctx: IAMContext, caller: Caller, raw_code: str | None, approve: bool,
                 require_claim: bool = False) -> DeviceInfo:
    """Approve or deny a pending code. A code claimed by another account (`claim`) is refused; with
    `require_claim` (Better Auth's routes), so is one not claimed yet."""
    found = await _pending(ctx, raw_code)
    assert caller.user_id
    session = await current_session(ctx, caller)
    async with ctx.db.session() as s:
        # Approving mints a session for the account: only from a session still live once the account
        # is held (the gateway may still vouch for one revoked in the last seconds).
        if session is None or await lock_user(s, caller.user_id) is None or not await session_is_live(s, session.id):
            raise NNOError(401, "UNAUTHORIZED", "A valid session token is required")
        row = await s.get(DeviceCode, found.id, with_for_update=not ctx.db.is_sqlite)
        if row is None or row.status != "pending":
            raise NNOError(409, "USER_CODE_USED", "This code was already used")
        if row.user_id is not None and row.user_id != caller.user_id:
            raise NNOError(403, "ACCESS_DENIED", "Another account is reviewing this code")
        if require_claim and row.user_id is None:
            raise NNOError(400, "DEVICE_CODE_NOT_CLAIMED",
                           "Open the code first (GET /device with the user_code, signed in), then approve or deny it")
        row.status = "approved" if approve else "denied"
        row.user_id = caller.user_id
        audit.record(s, caller, "device.approve" if approve else "device.deny", target_type="device",
                     target_id=row.id, data={"clientId": row.client_id})
    return DeviceInfo(row.user_code, row.client_id, row.scope, row.status, row.expires_at)
