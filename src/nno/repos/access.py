"""Who may use the CLI Service: NNO services and operators everything; a platform's admins (a
session, or a key whose maker is one) read their own platform's repository and builds. Anyone else
gets 404 for the platform, so its existence does not leak."""

from __future__ import annotations

from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, Identity
from nno.kernel.scopes import require_scope


def not_found(platform_id: str) -> NNOError:
    return NNOError(404, "REPO_NOT_FOUND", f"No repository for platform {platform_id}", {"platformId": platform_id})


def require_caller(identity: Identity) -> None:
    if identity.auth_type == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")


def require_write(identity: Identity, platform_id: str | None = None) -> None:
    """Changing a repository is for services and operators."""
    require_caller(identity)
    if identity.is_privileged:
        return
    if platform_id is not None and not can_read(identity, platform_id):
        raise not_found(platform_id)
    raise NNOError(403, "FORBIDDEN", "Only NNO operators and services may change platform repositories")


def can_read(identity: Identity, platform_id: str) -> bool:
    if identity.is_privileged:
        return True
    if identity.auth_type not in ("session", "apikey"):
        return False
    return identity.platform_id == platform_id and identity.role == ROLE_PLATFORM_ADMIN


def require_read(identity: Identity, platform_id: str) -> None:
    require_caller(identity)
    if not can_read(identity, platform_id):
        raise not_found(platform_id)
    require_scope(identity, "resources:read")
