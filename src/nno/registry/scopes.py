"""Which key permission (`nno.kernel.scopes`) each Registry route needs, as data: the area is named
by the path's first word after the platform id, the action by the method (reads `read`, everything
else `write`). Keys are platform-bound, so the operator-wide routes need `platform:*` too."""

from __future__ import annotations

from nno.kernel.scopes import action_of

# Sub-path of `/{platform_id}/...` -> area. "" is the platform itself.
AREAS: dict[str, str] = {
    "": "platform",
    "status": "platform",
    "lifecycle": "platform",
    "lifecycle-events": "audit",
    "audit": "audit",
    "tenants": "tenants",
    "stacks": "stacks",
    "resources": "resources",
    "dns-records": "resources",
    "features": "resources",
    "build-state": "resources",
}


def registry_scope(method: str, path: str) -> str | None:
    """The permission a route (its template, e.g. `/{platform_id}/tenants/{tenant_id}`) needs; None
    for a route no scoped key may use."""
    words = [w for w in path.split("/") if w]
    if not words or words[0] in ("by-slug", "onboarding"):
        area: str | None = "platform"
    elif words[0] == "{platform_id}":
        area = AREAS.get(words[1] if len(words) > 1 else "")
    else:
        area = None
    return f"{area}:{action_of(method)}" if area is not None else None
