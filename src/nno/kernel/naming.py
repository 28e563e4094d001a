"""Cloudflare-safe resource names (DECISIONS 11), the one builder every component uses.

`{platformId}-{stackId}-{service}[-{resourceType}][-stg]`: at most 63 characters of `[a-z0-9-]`,
because that is the tightest limit of the resource kinds NNO creates (Workers, Pages, R2, Queues).
Names embed the platform id, so they are unique by construction across platforms sharing one
account. Stack-shared resources (`{platformId}-{stackId}-db`) have no service part.
"""

from __future__ import annotations

import re

MAX_RESOURCE_NAME = 63
RESOURCE_TYPES = ("db", "storage", "kv", "queue")
DEFAULT_STACK_ID = "default"
STAGING_SUFFIX = "stg"

_ID_RE = re.compile(r"^[a-z0-9]{10}$")
_SERVICE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
NAME_RE = re.compile(r"^[a-z0-9-]+$")


class InvalidResourceName(ValueError):
    """A part or the result breaks the naming rule; `field` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def build_resource_name(
    platform_id: str,
    stack_id: str,
    service: str | None,
    resource_type: str | None = None,
    *,
    staging: bool = False,
) -> str:
    """The resource name for these parts, or `InvalidResourceName`. Production names carry no suffix."""
    if not isinstance(platform_id, str) or not _ID_RE.fullmatch(platform_id):
        raise InvalidResourceName("platformId", "platformId must be a 10-character id of [a-z0-9]")
    if not isinstance(stack_id, str) or not (stack_id == DEFAULT_STACK_ID or _ID_RE.fullmatch(stack_id)):
        raise InvalidResourceName("stackId", "stackId must be a 10-character id of [a-z0-9] or 'default'")
    parts = [platform_id, stack_id]
    if service is None:
        if resource_type is None:
            raise InvalidResourceName("service", "a name needs a service, a resource type, or both")
    elif not isinstance(service, str) or not _SERVICE_RE.fullmatch(service):
        raise InvalidResourceName(
            "service", "service must be [a-z0-9] words joined by single hyphens"
        )
    else:
        parts.append(service)
    if resource_type is not None:
        if resource_type not in RESOURCE_TYPES:
            raise InvalidResourceName("resourceType", f"resourceType must be one of {', '.join(RESOURCE_TYPES)}")
        parts.append(resource_type)
    if staging:
        parts.append(STAGING_SUFFIX)
    name = "-".join(parts)
    if len(name) > MAX_RESOURCE_NAME:
        raise InvalidResourceName("name", f"{name!r} is {len(name)} characters; the limit is {MAX_RESOURCE_NAME}")
    return name


def is_valid_resource_name(name: str) -> bool:
    """Whether `name` satisfies the effective rule (length and charset), whatever built it."""
    return isinstance(name, str) and 0 < len(name) <= MAX_RESOURCE_NAME and bool(NAME_RE.fullmatch(name))


def platform_repo_name(platform_id: str) -> str:
    """The platform repository's name (DECISIONS 11)."""
    if not isinstance(platform_id, str) or not _ID_RE.fullmatch(platform_id):
        raise InvalidResourceName("platformId", "platformId must be a 10-character id of [a-z0-9]")
    return f"nno-platform-{platform_id}"
