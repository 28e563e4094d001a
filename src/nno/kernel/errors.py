"""The NNO error envelope: `{"error": {"code", "message", "details"?, "requestId"}}`.

Every error any NNO app returns goes through here, including validation errors, unknown routes,
wrong methods and unhandled exceptions, so no framework default body ever leaves a service.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import fastapi.routing
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from nno.kernel.context import current_request_id

log = structlog.get_logger("nno.errors")

# Default code for a bare HTTP status, when the raiser gave none.
STATUS_CODES: dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    410: "GONE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    429: "RATE_LIMITED",
    451: "PLATFORM_SUSPENDED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


class NNOError(Exception):
    """Raise anywhere in a service to answer with the envelope."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code or STATUS_CODES.get(status, "ERROR")
        self.message = message or self.code.replace("_", " ").capitalize()
        self.details = details
        self.headers = headers
        super().__init__(self.message)


def envelope(code: str, message: str, details: Any = None, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    body["requestId"] = request_id or current_request_id()
    return {"error": body}


def envelope_bytes(code: str, message: str, details: Any = None, request_id: str | None = None) -> bytes:
    return json.dumps(envelope(code, message, details, request_id), separators=(",", ":")).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(envelope(code, message, details), status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        # Drop the "body"/"query" prefix for readability but keep where it came from.
        details.append({"field": ".".join(loc[1:]) or loc[0] if loc else "", "in": loc[0] if loc else "",
                        "message": err.get("msg", "invalid"), "type": err.get("type", "")})
    return details


UNSTORABLE_MESSAGE = ("A value in the request cannot be stored: text may not contain NUL characters and "
                      "integers must fit in 64 bits")


def unstorable_input(exc: BaseException) -> bool:
    """Whether `exc` is the database refusing a value it was given (SQLSTATE class 22, "data
    exception", e.g. NUL in text; asyncpg's client-side argument check; SQLite's int overflow),
    as opposed to a fault of the server."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OverflowError):
            return True
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and state.startswith("22"):
            return True
        # asyncpg.exceptions.DataError: an argument it cannot encode (e.g. beyond int64).
        if type(current).__module__.startswith("asyncpg") and isinstance(current, ValueError):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


# The order methods are listed in an `Allow` header (others follow alphabetically).
_METHOD_ORDER = {m: i for i, m in enumerate(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))}


def _flat_routes(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    """Every route in the order the router tries them, with its full path (included routers'
    prefixes applied). FastAPI >= 0.16x keeps included routers as branches and offers
    `iter_route_contexts` to walk them; older versions copy their routes into `app.routes`."""
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    return iter_route_contexts(routes) if iter_route_contexts is not None else routes


def route_path(scope: Any) -> str:
    """The path the app's router matches: the request path without the mount's `root_path`
    (Starlette's own rule, kept here rather than imported from its private `_utils`)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path):] if path[len(root_path)] == "/" else path


def allowed_methods(routes: Sequence[BaseRoute], route_path: str) -> list[str]:
    """The methods some route answers on `route_path`. A router answers a method with the first
    route (in order) whose path and method match; when that route is left out of the API
    description (`include_in_schema=False`, how a service declares routes that refuse a method
    themselves), the method is not counted."""
    first_route_is_public: dict[str, bool] = {}
    for route in _flat_routes(routes):
        path_regex = getattr(route, "path_regex", None)
        methods = getattr(route, "methods", None)
        if path_regex is None or not methods or not path_regex.match(route_path):
            continue
        for method in methods:
            first_route_is_public.setdefault(method, bool(getattr(route, "include_in_schema", True)))
    allowed = [method for method, public in first_route_is_public.items() if public]
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.append("HEAD")  # every service answers HEAD as its GET (`ServiceContextMiddleware`)
    return sorted(allowed, key=lambda m: (_METHOD_ORDER.get(m, len(_METHOD_ORDER)), m))


def install_error_handlers(app: FastAPI) -> None:
    async def nno_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, NNOError)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        code = STATUS_CODES.get(status, "ERROR")
        headers = dict(exc.headers or {})
        if status == 404:
            message = "Route not found" if exc.detail in (None, "Not Found") else str(exc.detail)
        elif status == 405:
            # The router's 405 names only the methods of the first route whose path matched (one
            # per decorator: GET of a GET|PATCH|DELETE path); list what the whole path answers.
            allowed = allowed_methods(request.app.router.routes, route_path(request.scope))
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            if not allowed:
                # Only routes that refuse every method (catch-alls answering 404) match the path.
                return error_response(404, "NOT_FOUND", "Route not found", headers=headers)
            headers["Allow"] = ", ".join(allowed)
            message = "Method not allowed on this route"
        else:
            message = str(exc.detail) if exc.detail else code.replace("_", " ").capitalize()
        return error_response(status, code, message, headers=headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, "VALIDATION_ERROR", "Request validation failed", _validation_details(exc))

    async def unhandled(_: Request, exc: Exception) -> Response:
        if unstorable_input(exc):
            # A value no input check caught (a query parameter, a cursor) that the database refuses.
            log.warning("unstorable_input", error=repr(exc))
            return error_response(400, "VALIDATION_ERROR", UNSTORABLE_MESSAGE)
        log.exception("unhandled_error", error=repr(exc))
        return error_response(500, "INTERNAL_ERROR", "Internal server error")

    app.add_exception_handler(NNOError, nno_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unhandled)
