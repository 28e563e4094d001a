"""What every request body and query value must satisfy before it can reach a database.

PostgreSQL refuses NUL characters in text and JSON(B) values, NaN/Infinity in json, and integers
beyond BIGINT; SQLite refuses integers beyond 64 bits; the JSON response encoder refuses NaN. Each
would surface as a 500 deep in a query or after a commit, so they are refused here, at the edge of
each service, with a 400 envelope that names the field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# An integer that fits a BIGINT column on every backend.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]

NUL_MESSAGE = "NUL characters (\\u0000) are not allowed"
NON_FINITE_MESSAGE = "numbers must be finite (no NaN or Infinity)"
INT_RANGE_MESSAGE = f"integers must lie between {INT64_MIN} and {INT64_MAX}"


def has_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL character anywhere (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(has_nul(item) for item in value)
    return False


def unstorable_problem(value: Any) -> str | None:
    """Why a decoded JSON value (walked through lists and objects, keys included) cannot be stored
    and returned as JSON: a NUL character, or a NaN/Infinity (Python's JSON parser accepts them; the
    response encoder and PostgreSQL's json type do not). None when it can."""
    if isinstance(value, str):
        return NUL_MESSAGE if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else NON_FINITE_MESSAGE
    if isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable_problem(key) or unstorable_problem(item)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            problem = unstorable_problem(item)
            if problem:
                return problem
    return None


class InputModel(BaseModel):
    """Base of every request body model: no field, however deeply nested (free-form JSON included),
    may hold a NUL character or a NaN/Infinity, and no integer field may leave int64 (fields with
    their own, tighter bounds report those first: this runs after them)."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = unstorable_problem(value)
        if problem:
            raise ValueError(problem)
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(INT_RANGE_MESSAGE)
        return value
