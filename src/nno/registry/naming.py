"""Resource naming, re-exported from the kernel so every component builds names the same way."""

from nno.kernel.naming import (
    DEFAULT_STACK_ID,
    MAX_RESOURCE_NAME,
    RESOURCE_TYPES,
    InvalidResourceName,
    build_resource_name,
    is_valid_resource_name,
    platform_repo_name,
)

__all__ = [
    "DEFAULT_STACK_ID",
    "MAX_RESOURCE_NAME",
    "RESOURCE_TYPES",
    "InvalidResourceName",
    "build_resource_name",
    "is_valid_resource_name",
    "platform_repo_name",
]
