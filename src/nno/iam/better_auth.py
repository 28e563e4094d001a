"""Better Auth's wire protocol on the `/api/auth/*` surface, enforced in one place.

Better Auth's official client reads `code` and `message` at the top level of an error body; NNO's
clients read the envelope. On this surface an error body carries both, with Better Auth's code and
status where NNO's differ (its `BASE_ERROR_CODES` and the organization plugin's codes), so one body
serves both clients. Its timestamps are ISO-8601 strings (the client turns them into dates), where
NNO's are Unix ms. Every other route keeps the plain NNO envelope and Unix ms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.kernel.errors import route_path

AUTH_PREFIX = "/api/auth/"
ORG = "/api/auth/organization/"


@dataclass(frozen=True)
class BetterAuthCode:
    status: int
    code: str


_BAD = 400
# NNO code -> Better Auth's, on any route of the surface.
CODES: dict[str, BetterAuthCode] = {
    "INVALID_CREDENTIALS": BetterAuthCode(401, "INVALID_EMAIL_OR_PASSWORD"),
    "USER_ALREADY_EXISTS": BetterAuthCode(422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"),
    "SLUG_TAKEN": BetterAuthCode(_BAD, "ORGANIZATION_SLUG_ALREADY_TAKEN"),
    "ALREADY_A_MEMBER": BetterAuthCode(_BAD, "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION"),
    "ALREADY_INVITED": BetterAuthCode(_BAD, "USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION"),
    "LAST_OWNER": BetterAuthCode(_BAD, "YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER"),
}

# (route, NNO code) -> Better Auth's, where its code depends on the route.
ROUTE_CODES: dict[tuple[str, str], BetterAuthCode] = {
    ("/api/auth/change-password", "INVALID_CREDENTIALS"): BetterAuthCode(_BAD, "INVALID_PASSWORD"),
    (ORG + "update", "FORBIDDEN"): BetterAuthCode(403, "YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_ORGANIZATION"),
    (ORG + "delete", "FORBIDDEN"): BetterAuthCode(403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_ORGANIZATION"),
    (ORG + "invite-member", "FORBIDDEN"):
        BetterAuthCode(403, "YOU_ARE_NOT_ALLOWED_TO_INVITE_USERS_TO_THIS_ORGANIZATION"),
    (ORG + "remove-member", "FORBIDDEN"): BetterAuthCode(403, "YOU_ARE_NOT_ALLOWED_TO_DELETE_THIS_MEMBER"),
    (ORG + "update-member-role", "FORBIDDEN"): BetterAuthCode(403, "YOU_ARE_NOT_ALLOWED_TO_UPDATE_THIS_MEMBER"),
    (ORG + "cancel-invitation", "FORBIDDEN"):
        BetterAuthCode(403, "YOU_ARE_NOT_ALLOWED_TO_CANCEL_THIS_INVITATION"),
    (ORG + "leave", "LAST_OWNER"): BetterAuthCode(_BAD, "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER"),
}


# The fields of Better Auth's user, session, organization, member and invitation that hold dates.
TIMESTAMP_KEYS = frozenset({"createdAt", "updatedAt", "expiresAt"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(ms: int) -> str:
    """Unix ms as JavaScript's `Date.prototype.toISOString` writes it: `2026-01-02T03:04:05.678Z`."""
    # Integer arithmetic: `ms / 1000` as a float loses the last millisecond of far-off instants.
    instant = EPOCH + timedelta(milliseconds=ms)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def with_iso_timestamps(value: Any) -> Any:
    """`value` with every integer under a TIMESTAMP_KEYS key, at any depth, as an ISO-8601 string."""
    if isinstance(value, dict):
        return {k: iso_ms(v) if k in TIMESTAMP_KEYS and isinstance(v, int) and not isinstance(v, bool)
                else with_iso_timestamps(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_iso_timestamps(v) for v in value]
    return value


def is_auth_path(path: str) -> bool:
    return path.startswith(AUTH_PREFIX)


def translate(path: str, status: int, code: str) -> tuple[int, str]:
    """Better Auth's (status, code) for NNO's error `code` answered on `path`."""
    found = ROUTE_CODES.get((path, code)) or CODES.get(code)
    return (found.status, found.code) if found else (status, code)


def compatible_error(path: str, status: int, body: Any) -> tuple[int, Any]:
    """The error body `body` (an NNO envelope) as the `/api/auth/*` surface answers it: the envelope
    with Better Auth's code, plus that `code` and the `message` at the top level."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return status, body
    error = dict(body["error"])
    status, error["code"] = translate(path, status, str(error.get("code", "")))
    return status, {"code": error["code"], "message": error.get("message", ""), "error": error}


class BetterAuthSurface:
    """Rewrites the JSON responses of `/api/auth/*` routes: errors (whatever raised them: a service,
    validation, an unknown route) with `compatible_error`, successes `with_iso_timestamps`. Other
    routes' responses pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_auth_path(route_path(scope)):
            await self.app(scope, receive, send)
            return
        path = route_path(scope).rstrip("/")
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                ctype = dict(message.get("headers", [])).get(b"content-type", b"")
                is_json = ctype.startswith(b"application/json")
                if is_json:
                    start = message  # held until the whole body is read
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status, body = start["status"], b"".join(chunks)
            try:
                parsed = json.loads(body)
                if status >= 400:
                    status, parsed = compatible_error(path, status, parsed)
                else:
                    parsed = with_iso_timestamps(parsed)
                body = json.dumps(parsed, separators=(",", ":")).encode()
            except ValueError:
                pass
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, rewrite)
