"""Which requests on the gateway's host are the Portal's: every path the gateway does not serve.
Kept free of imports so the core can route without loading the Portal's templates."""

from __future__ import annotations

GATEWAY_PATHS = ("/api/", "/health", "/openapi.json")


def is_portal_path(path: str) -> bool:
    if path == "/api" or path.startswith(GATEWAY_PATHS[0]):
        return False
    return path not in GATEWAY_PATHS[1:]
