"""The names and hostnames Provisioning creates, byte-identical to the Cloudflare scheme
(registry.md §3-§4, DECISIONS 11). Resource names come from the shared builder
`nno.kernel.naming.build_resource_name`; this module only says which parts each resource uses.
"""

from __future__ import annotations

import re

from nno.kernel.naming import DEFAULT_STACK_ID, InvalidResourceName, build_resource_name

__all__ = ["DEFAULT_STACK_ID", "InvalidResourceName", "build_resource_name"]

_PAGES_RE = re.compile(r"^[a-z0-9-]{1,63}$")


def _stg(environment: str) -> bool:
    return environment == "stg"


def auth_worker_name(platform_id: str, environment: str = "prod") -> str:
    return build_resource_name(platform_id, DEFAULT_STACK_ID, "auth", staging=_stg(environment))


def auth_db_name(platform_id: str, environment: str = "prod") -> str:
    return build_resource_name(platform_id, DEFAULT_STACK_ID, "auth", "db", staging=_stg(environment))


def portal_pages_name(platform_id: str, environment: str = "prod") -> str:
    """The console shell's Pages project, `{platformId}-{env}-portal` (direct-upload page)."""
    name = f"{platform_id}-{environment}-portal"
    if not _PAGES_RE.match(name):
        raise InvalidResourceName("name", f"invalid Pages project name {name!r}")
    return name


def feature_worker_name(platform_id: str, stack_id: str, feature_id: str, environment: str = "prod") -> str:
    return build_resource_name(platform_id, stack_id, feature_id, staging=_stg(environment))


def feature_data_name(
    platform_id: str, stack_id: str, feature_id: str, resource_type: str, environment: str = "prod"
) -> str:
    return build_resource_name(platform_id, stack_id, feature_id, resource_type, staging=_stg(environment))


def stack_shared_name(platform_id: str, stack_id: str, resource_type: str, environment: str = "prod") -> str:
    return build_resource_name(platform_id, stack_id, None, resource_type, staging=_stg(environment))


def hostname(
    service: str, kind: str, stack_id: str, platform_id: str, base_domain: str, environment: str = "prod"
) -> str:
    """DNS Pattern B: `{service}.{type}[.stg].{stack}.{platformId}.{base}`, where `type` is `app`
    (a Pages frontend) or `svc` (a Worker API)."""
    if kind not in ("app", "svc"):
        raise InvalidResourceName("type", "hostname type must be app or svc")
    labels = [service, kind, *(["stg"] if _stg(environment) else []), stack_id, platform_id, base_domain]
    return ".".join(labels)
