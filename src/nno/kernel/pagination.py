"""Cursor pagination as the API documents it: `{data, pagination: {hasMore, nextCursor, total}}`."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from nno.kernel.errors import NNOError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class PageInfo(BaseModel):
    hasMore: bool
    nextCursor: str | None
    total: int


class Page(BaseModel, Generic[T]):
    data: list[T]
    pagination: PageInfo


def encode_cursor(values: dict[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_value_ok(value: Any, want_int: bool) -> bool:
    # Cursor values go straight into a keyset query: only what the database can compare is let through.
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**63
    return not want_int and isinstance(value, str) and "\x00" not in value and len(value) <= 500


def decode_cursor(cursor: str, keys: tuple[str, ...], int_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Decode a cursor made by `encode_cursor`; anything else is a 400 INVALID_CURSOR. Every value
    must be an int64 integer or a string without NUL; values under `int_keys` must be integers."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise NNOError(400, "INVALID_CURSOR", "The cursor is not valid") from exc
    if not isinstance(values, dict) or set(values) != set(keys):
        raise NNOError(400, "INVALID_CURSOR", "The cursor is not valid")
    if not all(_cursor_value_ok(values[key], key in int_keys) for key in keys):
        raise NNOError(400, "INVALID_CURSOR", "The cursor is not valid")
    return values


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise NNOError(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_LIMIT}",
                       {"field": "limit"})
    return limit
