"""Who is calling: the identity the gateway resolved, as services receive it in `X-Nno-*` headers.

Services trust these headers because only the gateway (or another service, through a binding) can
reach them: in-process dispatch in embedded mode, the internal token over HTTP when scaled out.
The gateway strips any client-supplied `X-Nno-*` header before it sets its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, cast

from fastapi import Request

from nno.kernel.errors import NNOError

H_USER_ID = "x-nno-user-id"
H_ROLE = "x-nno-role"
H_PLATFORM_ID = "x-nno-platform-id"
H_AUTH_TYPE = "x-nno-auth-type"
H_KEY_ID = "x-nno-key-id"
H_PERMISSIONS = "x-nno-permissions"
H_EMAIL = "x-nno-email"
H_REQUEST_ID = "x-nno-request-id"
H_TRACE_ID = "x-nno-trace-id"
H_INTERNAL_TOKEN = "x-nno-internal-token"
# The caller's address as the gateway saw it, for services reached over HTTP (scaled mode), whose
# own peer is the gateway. Honoured only together with a valid internal token.
H_CLIENT_IP = "x-nno-client-ip"

# Roles forwarded in X-Nno-Role.
ROLE_SERVICE = "service"  # static AUTH_API_KEY caller (path 1)
ROLE_OPERATOR = "nno-operator"  # member of the nno-operator organization
ROLE_PLATFORM_ADMIN = "platform-admin"  # admin of the platform in X-Nno-Platform-Id
ROLE_USER = "user"
# Programmatic keys (path 3) are forwarded with their maker's current role on the key's platform
# (`platform-admin` or `user`, resolved by IAM at validation) and auth type `apikey`; `nno.kernel.scopes`
# applies their permissions. ROLE_APIKEY is what clients call such a credential.
ROLE_APIKEY = "apikey"

AuthType = Literal["service", "session", "apikey", "dev", "anonymous"]
_AUTH_TYPES = frozenset(("service", "session", "apikey", "dev", "anonymous"))


@dataclass(frozen=True)
class Identity:
    auth_type: AuthType = "anonymous"
    user_id: str | None = None
    role: str | None = None
    platform_id: str | None = None
    key_id: str | None = None
    email: str | None = None
    permissions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_service(self) -> bool:
        """Static-key callers, and the local-dev bypass, which the seed says passes everything."""
        return self.auth_type in ("service", "dev")

    @property
    def is_operator(self) -> bool:
        """Only a person's session carries operator rights; a key never does, whatever its role says."""
        return self.role == ROLE_OPERATOR and self.auth_type == "session"

    @property
    def is_privileged(self) -> bool:
        """Operators and services see every platform."""
        return self.is_service or self.is_operator

    def to_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {H_AUTH_TYPE: self.auth_type}
        for name, value in (
            (H_USER_ID, self.user_id),
            (H_ROLE, self.role),
            (H_PLATFORM_ID, self.platform_id),
            (H_KEY_ID, self.key_id),
            (H_EMAIL, self.email),
        ):
            if value:
                headers[name] = value
        if self.permissions:
            headers[H_PERMISSIONS] = ",".join(self.permissions)
        return headers

    @classmethod
    def from_headers(cls, headers: object) -> Identity:
        get = headers.get  # type: ignore[attr-defined]
        raw = get(H_AUTH_TYPE) or "anonymous"
        auth_type = cast(AuthType, raw if raw in _AUTH_TYPES else "anonymous")
        perms = tuple(p for p in (get(H_PERMISSIONS) or "").split(",") if p)
        return cls(
            auth_type=auth_type,
            user_id=get(H_USER_ID) or None,
            role=get(H_ROLE) or None,
            platform_id=get(H_PLATFORM_ID) or None,
            key_id=get(H_KEY_ID) or None,
            email=get(H_EMAIL) or None,
            permissions=perms,
        )


SERVICE_IDENTITY = Identity(auth_type="service", role=ROLE_SERVICE)


def get_identity(request: Request) -> Identity:
    """FastAPI dependency: the caller as the gateway resolved it."""
    return Identity.from_headers(request.headers)


def require_authenticated(request: Request) -> Identity:
    ident = get_identity(request)
    if ident.auth_type == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")
    return ident


def require_user(request: Request) -> Identity:
    """A signed-in person (session), not a key or a service."""
    ident = get_identity(request)
    if ident.auth_type != "session" or not ident.user_id:
        raise NNOError(401, "UNAUTHORIZED", "A signed-in user session is required")
    return ident


def require_service(request: Request) -> Identity:
    ident = get_identity(request)
    if not ident.is_service:
        raise NNOError(403, "FORBIDDEN", "This endpoint is for NNO services only")
    return ident


def require_privileged(request: Request) -> Identity:
    ident = require_authenticated(request)
    if not ident.is_privileged:
        raise NNOError(403, "FORBIDDEN", "Operator or service access required")
    return ident
