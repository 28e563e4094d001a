"""What every request body and query value must satisfy before it can reach a database.

PostgreSQL refuses NUL characters in text and JSON(B) values, NaN/Infinity in json, and integers
beyond BIGINT; SQLite refuses integers beyond 64 bits; the JSON response encoder refuses NaN. Each
would surface as a 500 deep in a query or after a commit, so they are refused here, at the edge of
each service, with a 400 envelope that names the field.

Free-form JSON (a `dict[str, Any]` field and the like) nests at most MAX_JSON_DEPTH containers:
deeper values were stored, but every later answer holding them went through a response model whose
serializer stops at 255 levels, so the record's reads were 500s for good.

A JSON `true`/`false` is not a number either, though pydantic's lax mode reads it as 1/0: every
number an InputModel declares refuses booleans (numeric strings such as "5" stay accepted, as
FastAPI does by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, cast

from pydantic import BaseModel, Field, GetCoreSchemaHandler, field_validator
from pydantic_core import CoreSchema, PydanticCustomError, SchemaError, SchemaValidator, core_schema

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# An integer that fits a BIGINT column on every backend.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]

NUL_MESSAGE = "NUL characters (\\u0000) are not allowed"
NON_FINITE_MESSAGE = "numbers must be finite (no NaN or Infinity)"
INT_RANGE_MESSAGE = f"integers must lie between {INT64_MIN} and {INT64_MAX}"
# Containers (objects, arrays) one field's value may nest, itself included. Far below the 255 levels
# pydantic's serializer allows, leaving room for the envelopes and models an answer wraps it in.
MAX_JSON_DEPTH = 64
DEPTH_MESSAGE = f"JSON values may nest at most {MAX_JSON_DEPTH} levels of objects and arrays"


def has_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL character anywhere (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(has_nul(item) for item in value)
    return False


def unstorable_problem(value: Any, _depth: int = 0) -> str | None:
    """Why a decoded JSON value (walked through lists and objects, keys included) cannot be stored
    and returned as JSON: a NUL character, a NaN/Infinity (Python's JSON parser accepts them; the
    response encoder and PostgreSQL's json type do not), or more than MAX_JSON_DEPTH nested
    containers (the walk stops there). None when it can."""
    if isinstance(value, str):
        return NUL_MESSAGE if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else NON_FINITE_MESSAGE
    if isinstance(value, (dict, list, tuple, set, frozenset)) and _depth >= MAX_JSON_DEPTH:
        return DEPTH_MESSAGE
    if isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable_problem(key, _depth + 1) or unstorable_problem(item, _depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            problem = unstorable_problem(item, _depth + 1)
            if problem:
                return problem
    return None


def _refuse_bool_for_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer, not a boolean")
    return value


def _refuse_bool_for_float(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "Input should be a valid number, not a boolean")
    return value


_BOOL_REFUSERS: dict[str, Callable[[Any], Any]] = {"int": _refuse_bool_for_int, "float": _refuse_bool_for_float}
_REFUSER_FUNCTIONS = frozenset(_BOOL_REFUSERS.values())
# The keys of a core schema node that hold other core schemas (a schema, a list of them, or a dict of
# them by field name or union tag). Everything else (defaults, metadata, serialization) is left alone.
_SUB_SCHEMA_KEYS = frozenset({
    "schema", "items_schema", "keys_schema", "values_schema", "choices", "fields", "steps", "lax_schema",
    "strict_schema", "json_schema", "python_schema", "extras_schema", "extras_keys_schema",
})


def _validator_name(schema: CoreSchema) -> str | None:
    """pydantic-core's name for a schema, which labels a union member in error locations."""
    try:
        return str(SchemaValidator(schema).title)
    except SchemaError:  # a member referring to definitions elsewhere: keep pydantic's own label
        return None


def _takes_int_values(node: dict[str, Any]) -> bool:
    """An int `Literal` or an `IntEnum`: lax mode lets `true` stand for 1 there too."""
    if node.get("type") == "enum":
        return node.get("sub_type") == "int"
    if node.get("type") == "literal":
        expected = node.get("expected", ())
        return (any(isinstance(v, int) and not isinstance(v, bool) for v in expected)
                and not any(isinstance(v, bool) for v in expected))
    return False


def refusing_bools(schema: CoreSchema, model: type[BaseModel],
                   resolve: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda ref: None) -> CoreSchema:
    """`schema` (the core schema of `model`) with every int, float, int-`Literal` and `IntEnum`
    validator made to refuse booleans first. Nested models are left as they are (an InputModel has done this to itself);
    nodes are copied, never changed in place, because pydantic shares them between schemas.
    `resolve` finds the schema a `definition-ref` node points to (None when it cannot)."""

    def visit(node: dict[str, Any]) -> dict[str, Any]:
        kind = node.get("type")
        if kind in _BOOL_REFUSERS or _takes_int_values(node):
            refuser = _BOOL_REFUSERS.get(str(kind), _refuse_bool_for_int)
            return cast(dict[str, Any], core_schema.no_info_before_validator_function(refuser, cast(CoreSchema, node)))
        if kind == "definition-ref":
            # Enums are kept as definitions: an IntEnum is checked through its reference.
            target = resolve(node)
            if target is not None and _takes_int_values(target):
                return cast(dict[str, Any], core_schema.no_info_before_validator_function(
                    _refuse_bool_for_int, cast(CoreSchema, node)))
            return node
        if kind == "model" and node.get("cls") is not model:
            return node
        if kind == "function-before" and node["function"].get("function") in _REFUSER_FUNCTIONS:
            return node  # already done
        copy: dict[str, Any] | None = None
        for key in _SUB_SCHEMA_KEYS.intersection(node):
            value = node[key]
            new = visit_union_choices(value) if kind == "union" and key == "choices" else visit_value(value)
            if new is not value:
                copy = copy if copy is not None else dict(node)
                copy[key] = new
        return copy if copy is not None else node

    def visit_value(value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            return visit(value)
        if isinstance(value, dict):  # fields by name, tagged-union members by tag
            new_items = {k: visit_value(v) for k, v in value.items()}
            return new_items if any(new_items[k] is not value[k] for k in value) else value
        if isinstance(value, list):
            new_list = [visit_value(v) for v in value]
            return new_list if any(n is not o for n, o in zip(new_list, value, strict=True)) else value
        return value

    def visit_union_choices(choices: list[Any]) -> list[Any]:
        # A changed member keeps its label, so error locations read `field.int`, as before.
        new_choices: list[Any] = []
        for choice in choices:
            member, label = choice if isinstance(choice, tuple) else (choice, None)
            new_member = visit(member)
            if new_member is member:
                new_choices.append(choice)
            else:
                label = label or _validator_name(cast(CoreSchema, member))
                new_choices.append((new_member, label) if label else new_member)
        return new_choices if any(n is not o for n, o in zip(new_choices, choices, strict=True)) else choices

    return cast(CoreSchema, visit(cast(dict[str, Any], schema)))


class InputModel(BaseModel):
    """Base of every request body model: no field, however deeply nested (free-form JSON included),
    may hold a NUL character or a NaN/Infinity, no field's value nests more than MAX_JSON_DEPTH
    objects and arrays, no integer field may leave int64 (fields with
    their own, tighter bounds report those first: this runs after them), and no number field
    (int or float, however nested: `int | None`, `list[int]`, `dict[str, int]`, constrained ints)
    takes a boolean. Bool fields and free-form (`Any`) values still take booleans."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[BaseModel], handler: GetCoreSchemaHandler, /) -> CoreSchema:
        # pydantic's lax mode reads true/false as 1/0 and offers no switch for just that (strict
        # mode would also refuse enum and datetime strings), so each number validator gets a
        # boolean check in front of it; validation is otherwise pydantic's own.
        def resolve(ref: dict[str, Any]) -> dict[str, Any] | None:
            try:
                return cast(dict[str, Any], handler.resolve_ref_schema(cast(CoreSchema, ref)))
            except LookupError:
                return None

        return refusing_bools(handler(source), cls, resolve)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = unstorable_problem(value)
        if problem:
            raise ValueError(problem)
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(INT_RANGE_MESSAGE)
        return value
