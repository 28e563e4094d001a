"""What an API key may do, enforced the same way by every service (docs/security.md).

A key is bound to one platform and acts for the person who made it, with at most the rights that
person holds on that platform *now*: IAM resolves the maker's current role at every validation
(`platform-admin` or `user`; a key whose maker left the platform is refused) and the gateway
forwards it as `X-Nno-Role`, so services apply the same membership rules to a key as to its maker's
session. A key never carries operator rights.

The key's `permissions` then narrow what it may do. They are `{area}:{action}` strings:

    platform:read  platform:write         the platform record, its status and settings
    tenants:read   tenants:write          tenants and sub-tenants
    stacks:read    stacks:write           stacks
    resources:read resources:write        resources, secret status, DNS records, features, build state
    audit:read                            the platform's audit log and lifecycle history
    provisioning:read provisioning:write  provisioning jobs; feature and stack activations

Feature packages define their own `{featureId}:{action}` keys (`billing:read`) and check them
with `require_scope` too. `*` grants everything and `{area}:*` every action of an area; `write`
implies `read`. A key with no permissions is unscoped: everything its maker may do on its platform.
Sessions and services are governed by their roles, never by scopes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import Request

from nno.kernel.errors import NNOError
from nno.kernel.identity import Identity, get_identity

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCOPE_ERROR = "INSUFFICIENT_SCOPE"


def action_of(method: str) -> str:
    """`read` for safe methods, `write` for everything else."""
    return "read" if method.upper() in READ_METHODS else "write"


def grants(held: Iterable[str], permission: str) -> bool:
    """Whether the permissions `held` include `permission` (wildcards and write-implies-read)."""
    area, _, action = permission.partition(":")
    wanted = {permission, "*", f"{area}:*"}
    if action == "read":
        wanted.add(f"{area}:write")
    return any(p in wanted for p in held)


def key_allows(identity: Identity, permission: str | None) -> bool:
    """True unless `identity` is a scoped API key whose permissions do not grant `permission` (None:
    the route takes no scoped key at all)."""
    if identity.auth_type != "apikey" or not identity.permissions:
        return True
    return permission is not None and grants(identity.permissions, permission)


def require_scope(identity: Identity, permission: str | None) -> None:
    """403 `INSUFFICIENT_SCOPE` when a scoped key lacks `permission`."""
    if not key_allows(identity, permission):
        raise NNOError(403, SCOPE_ERROR,
                       "This API key's permissions do not allow this request" if permission else
                       "This route does not accept a scoped API key",
                       {"required": permission, "granted": list(identity.permissions)})


ScopeOf = Callable[[str, str], "str | None"]


def scope_guard(scope_of: ScopeOf) -> Callable[[Request], Awaitable[None]]:
    """A router dependency: `scope_of(method, route_path)` names the permission a route needs (its
    path template as the service mounts it, e.g. `/{platform_id}/tenants`), and scoped keys without
    it are refused before the handler runs. A coroutine, so FastAPI runs it on the event loop
    rather than sending every request's check through its thread pool."""

    async def guard(request: Request) -> None:
        identity = get_identity(request)
        if identity.auth_type != "apikey" or not identity.permissions:
            return
        route = request.scope.get("route")
        path = getattr(route, "path", None) or request.url.path
        require_scope(identity, scope_of(request.method, path))

    return guard
