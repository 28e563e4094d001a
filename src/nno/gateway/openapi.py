"""The gateway's merged OpenAPI document: every available service's `/openapi.json` (fetched
through its binding), with each path re-prefixed with its public gateway prefix, component names
namespaced by service (`iam_User`) so services cannot collide, public routes marked `security: []`,
plus the gateway's own routes. Cached briefly; services that cannot answer are listed in
`x-nno-unavailable` instead of failing the whole document."""

from __future__ import annotations

import json
import time
from typing import Any

import structlog

from nno.gateway.routing import ROUTES, Route, is_public
from nno.kernel.bindings import Bindings, UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY

log = structlog.get_logger("nno.gateway.openapi")

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_COMPONENTS_REF = "#/components/"

GATEWAY_PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "tags": ["gateway"],
            "operationId": "gateway_health",
            "summary": "Liveness check",
            "security": [],
            "responses": {"200": {"description": "The gateway is up", "content": {"text/plain": {
                "schema": {"type": "string", "example": "ok"}}}}},
        }
    },
    "/openapi.json": {
        "get": {
            "tags": ["gateway"],
            "operationId": "gateway_openapi",
            "summary": "This merged OpenAPI document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {}}}},
        }
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A session token from IAM, or the static service key (AUTH_API_KEY)"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
               "description": "A programmatic key, `nno_...`"},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "nno_session"},
}


def _rename_refs(node: Any, service: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_COMPONENTS_REF):
                kind, _, name = value[len(_COMPONENTS_REF):].partition("/")
                out[key] = f"{_COMPONENTS_REF}{kind}/{service}_{name}"
            else:
                out[key] = _rename_refs(value, service)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, service) for v in node]
    return node


def _public_path(route: Route, upstream_path: str, routes: tuple[Route, ...]) -> str | None:
    """Where an upstream path is reachable through the gateway via `route`, if it is."""
    up = route.upstream_prefix
    if up:
        if upstream_path != up and not upstream_path.startswith(up + "/"):
            return None
        rest = upstream_path[len(up):]
    else:
        # Paths another route of the same service claims (the Registry's /onboarding) belong there.
        for other in routes:
            if other.service == route.service and other.upstream_prefix and (
                upstream_path == other.upstream_prefix or upstream_path.startswith(other.upstream_prefix + "/")
            ):
                return None
        rest = upstream_path
    return route.prefix if rest in ("", "/") else route.prefix + rest


def merge_documents(docs: dict[str, dict[str, Any]], unavailable: list[str] | None = None) -> dict[str, Any]:
    paths: dict[str, Any] = json.loads(json.dumps(GATEWAY_PATHS))
    components: dict[str, dict[str, Any]] = {"securitySchemes": dict(SECURITY_SCHEMES)}
    tags = [{"name": "gateway", "description": "The gateway's own routes"}]
    for route in ROUTES:
        doc = docs.get(route.service)
        if doc is None:
            continue
        tag = route.prefix.rsplit("/", 1)[1]
        tags.append({"name": tag, "description": route.description})
        for upstream_path, item in (doc.get("paths") or {}).items():
            public = _public_path(route, upstream_path, ROUTES)
            if public is None:
                continue
            item = _rename_refs(item, route.service)
            for method, op in item.items():
                if method not in HTTP_METHODS or not isinstance(op, dict):
                    continue
                op["tags"] = [tag]
                if "operationId" in op:
                    op["operationId"] = f"{route.service}_{op['operationId']}"
                if is_public(method.upper(), public):
                    op["security"] = []
            paths[public] = item
    for service, doc in docs.items():
        for kind, entries in ((doc.get("components") or {}).items()):
            if not isinstance(entries, dict) or kind == "securitySchemes":
                continue
            target = components.setdefault(kind, {})
            for name, value in entries.items():
                target[f"{service}_{name}"] = _rename_refs(value, service)
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "NNO Gateway API", "version": "1.0.0",
                 "description": "NNO's single public API entry point. Every route is prefixed /api/v1/*."},
        "paths": dict(sorted(paths.items())),
        "components": components,
        "security": [{"bearer": []}, {"apiKey": []}, {"sessionCookie": []}],
        "tags": tags,
    }
    if unavailable:
        merged["x-nno-unavailable"] = sorted(unavailable)
    return merged


class OpenAPIDocument:
    def __init__(self, bindings: Bindings, ttl_s: float = 30.0) -> None:
        self.bindings = bindings
        self.ttl_s = ttl_s
        self._body: bytes | None = None
        self._expires = 0.0

    async def fetch(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        docs: dict[str, dict[str, Any]] = {}
        unavailable: list[str] = []
        for service in dict.fromkeys(r.service for r in ROUTES):
            binding = self.bindings.get(service)
            if binding is None:
                continue
            try:
                resp = await binding.request("GET", "/openapi.json", headers=SERVICE_IDENTITY.to_headers())
                data = resp.json() if resp.ok else None
            except (UpstreamError, ValueError) as exc:
                log.warning("openapi_fetch_failed", service=service, error=str(exc))
                data = None
            if isinstance(data, dict) and "openapi" in data and isinstance(data.get("paths"), dict):
                docs[service] = data
            else:
                unavailable.append(service)
        return docs, unavailable

    async def body(self) -> bytes:
        now = time.monotonic()
        if self._body is None or now >= self._expires:
            docs, unavailable = await self.fetch()
            self._body = json.dumps(merge_documents(docs, unavailable), separators=(",", ":")).encode()
            self._expires = now + self.ttl_s
        return self._body
