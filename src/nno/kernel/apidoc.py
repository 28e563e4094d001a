"""Every service's OpenAPI document describes the errors it really sends: the NNO envelope.

FastAPI documents a 422 `HTTPValidationError` on every operation that takes input, but NNO
services answer validation failures with a 400 envelope (`kernel.errors`). The document says so
instead, and gives each JSON operation `4XX` and `5XX` responses with the envelope's schema, so
clients (and conformance checkers) see the error contract rather than the framework's default.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": "ErrorEnvelope",
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "requestId"],
            "properties": {
                "code": {"type": "string", "description": "Machine-readable error code, e.g. NOT_FOUND"},
                "message": {"type": "string"},
                "details": {"description": "Extra, code-specific information"},
                "requestId": {"type": "string"},
            },
        },
    },
}
_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
_FRAMEWORK_SCHEMAS = ("HTTPValidationError", "ValidationError")
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _answers_json(operation: dict[str, Any]) -> bool:
    """Operations whose success is not JSON (HTML pages, plain text) keep their own error story."""
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith("2"):
            content = response.get("content")
            return content is None or "application/json" in content
    return True


def document_error_envelope(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a FastAPI-generated document in place (and return it): 422s become 400 envelopes,
    JSON operations gain `4XX`/`5XX` envelope responses, the framework's error schemas go."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FRAMEWORK_SCHEMAS:
        schemas.pop(name, None)
    schemas["ErrorEnvelope"] = ERROR_ENVELOPE_SCHEMA
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _HTTP_METHODS or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if not _answers_json(operation):
                responses.pop("422", None)
                continue
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {"description": "Validation failed (VALIDATION_ERROR)",
                                             "content": {"application/json": {"schema": dict(_REF)}}})
            for status_range in ("4XX", "5XX"):
                responses.setdefault(status_range, {"description": "Error (the NNO envelope)",
                                                    "content": {"application/json": {"schema": dict(_REF)}}})
    return schema


def install_error_docs(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            generated = get_openapi(title=app.title, version=app.version, description=app.description,
                                    routes=app.routes)
            app.openapi_schema = document_error_envelope(generated)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
