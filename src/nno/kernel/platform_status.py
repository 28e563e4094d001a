"""What every component agrees on about a platform's status (registry.md §7, DECISIONS 5): which
statuses mean the platform is gone, and the shared-cache key the Registry writes a status under and
the Gateway reads it from."""

from __future__ import annotations

# `cancelled` and `deleted` cannot be restored: the gateway answers 410 for them, the Registry records
# nothing new on such a platform, and Provisioning accepts only jobs that remove things.
GONE_STATUSES = frozenset({"cancelled", "deleted"})


def status_cache_key(platform_id: str) -> str:
    """The KV key of a platform's status."""
    return f"platform-status:{platform_id}"
