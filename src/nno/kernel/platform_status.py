"""What every component agrees on about a platform's status (registry.md §7, DECISIONS 5): which
statuses mean the platform is gone, the shared-cache key the Registry writes a status under and the
Gateway reads it from, and the suspension rule every service applies to writes
(`check_not_suspended`, docs/security.md)."""

from __future__ import annotations

from urllib.parse import quote

from nno.kernel.bindings import Bindings, UpstreamError
from nno.kernel.errors import NNOError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.kv import KeyValueStore

# `cancelled` and `deleted` cannot be restored: the gateway answers 410 for them, the Registry records
# nothing new on such a platform, and Provisioning accepts only jobs that remove things.
GONE_STATUSES = frozenset({"cancelled", "deleted"})


def status_cache_key(platform_id: str) -> str:
    """The KV key of a platform's status."""
    return f"platform-status:{platform_id}"


SUSPENDED = "suspended"
SUSPENDED_CODE = "PLATFORM_SUSPENDED"
SUSPENDED_MESSAGE = "This platform has been suspended."


def check_not_suspended(platform_id: str, status: str | None, *, privileged: bool, operation: str) -> None:
    """The suspension rule every service applies to a write on a platform (the gateway applies it to
    whole requests): on a `suspended` platform only services and NNO operators act (restore it, keep
    its records current, wind it down); anyone else gets the gateway's 451 `PLATFORM_SUSPENDED`. The
    rule follows the platform a write addresses, never the caller's session."""
    if status == SUSPENDED and not privileged:
        raise NNOError(451, SUSPENDED_CODE, SUSPENDED_MESSAGE,
                       {"platformId": platform_id, "operation": operation})


async def read_status(kv: KeyValueStore, bindings: Bindings, platform_id: str) -> str | None:
    """A platform's status for a service that is not the Registry: the shared status cache, else the
    Registry's own answer (asked as a service). None when neither knows (unknown platform) or the
    Registry cannot be reached."""
    try:
        value = await kv.get(status_cache_key(platform_id))
    except Exception:  # the shared cache is down: ask the Registry
        value = None
    if value:
        return value
    registry = bindings.get("registry")
    if registry is None:
        return None
    try:
        resp = await registry.request("GET", f"/{quote(platform_id, safe='')}/status",
                                      headers=SERVICE_IDENTITY.to_headers())
    except UpstreamError:
        return None
    data = resp.json() if resp.ok else None
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) and status else None
