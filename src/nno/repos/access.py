"""Who may use the CLI Service: NNO services and operators everything; a platform's admins (a
session, or a key whose maker is one) read their own platform's repository and builds. Anyone else
gets 404 for the platform, so its existence does not leak.

A session is a platform's admin when the gateway says so for that platform (`X-Nno-Role` with
`X-Nno-Platform-Id`) or IAM's platform-members list does (the same rule as the Registry's).
"""

from __future__ import annotations

import structlog

from nno.kernel.bindings import Bindings, UpstreamError
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, SERVICE_IDENTITY, Identity
from nno.kernel.scopes import require_scope

log = structlog.get_logger("nno.repos.access")


def not_found(platform_id: str) -> NNOError:
    return NNOError(404, "REPO_NOT_FOUND", f"No repository for platform {platform_id}", {"platformId": platform_id})


def require_caller(identity: Identity) -> None:
    if identity.auth_type == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")


async def _iam_admin(bindings: Bindings, user_id: str, platform_id: str) -> bool:
    iam = bindings.get("iam")
    if iam is None:
        return False
    try:
        resp = await iam.request("GET", "/api/nno/platform-members", params={"userId": user_id},
                                 headers=SERVICE_IDENTITY.to_headers())
    except UpstreamError as exc:  # fail closed
        log.warning("iam_platform_members_unavailable", error=str(exc))
        return False
    if not resp.ok:
        return False
    body = resp.json() or {}
    return any(isinstance(m, dict) and m.get("platformId") == platform_id and m.get("userId") == user_id
               and m.get("role") == ROLE_PLATFORM_ADMIN for m in body.get("data", []))


async def can_read(identity: Identity, platform_id: str, bindings: Bindings) -> bool:
    if identity.is_privileged:
        return True
    if identity.auth_type not in ("session", "apikey"):
        return False
    if identity.platform_id == platform_id and identity.role == ROLE_PLATFORM_ADMIN:
        return True
    if identity.auth_type == "session" and identity.user_id and identity.platform_id in (None, platform_id):
        return await _iam_admin(bindings, identity.user_id, platform_id)
    return False


async def require_read(identity: Identity, platform_id: str, bindings: Bindings) -> None:
    require_caller(identity)
    if not await can_read(identity, platform_id, bindings):
        raise not_found(platform_id)
    require_scope(identity, "resources:read")


async def require_write(identity: Identity, bindings: Bindings, platform_id: str | None = None) -> None:
    """Changing a repository is for services and operators."""
    require_caller(identity)
    if identity.is_privileged:
        return
    if platform_id is not None and not await can_read(identity, platform_id, bindings):
        raise not_found(platform_id)
    raise NNOError(403, "FORBIDDEN", "Only NNO operators and services may change platform repositories")
