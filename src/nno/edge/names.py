"""Validation of the names the local cloud turns into files, directories and routes.

Cloudflare's effective rule for every generated name is `[a-z0-9-]`, at most 63 characters
(registry.md §3.2); enforcing it here also means no name can escape the cloud directory.
"""

from __future__ import annotations

import re

RESOURCE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
HOST_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
SECRET_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
BINDING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def is_resource_name(name: str) -> bool:
    return bool(RESOURCE_NAME_RE.match(name))


def is_hostname(hostname: str) -> bool:
    if not hostname or len(hostname) > 253:
        return False
    return all(HOST_LABEL_RE.match(label) for label in hostname.split("."))


def platform_of(name: str) -> str:
    """The platform id a resource name embeds: `{platformId}-{stackId}-...` (DECISIONS 11)."""
    return name.split("-", 1)[0]


def host_without_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, never an edge host
        return host
    host = host.rsplit(":", 1)[0] if ":" in host else host
    return host[:-1] if host.endswith(".") else host  # the absolute form names the same host


def host_port(host: str) -> int | None:
    """The port a Host header names, if any."""
    _, sep, port = host.strip().rpartition(":")
    return int(port) if sep and port.isdigit() and "]" not in port else None
