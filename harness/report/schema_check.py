"""A small JSON Schema validator for the subset docs/summary-schema.json uses (type, enum, required,
properties, additionalProperties, items, minimum).

Why not the jsonschema package: it is not a dependency of the project, and a
reader of summary.json in CI needs the check to run everywhere. A keyword outside
the subset is refused (ValueError) rather than silently ignored, so the schema
cannot drift beyond what is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["validate", "ERRORS_MAX"]

ERRORS_MAX = 50
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})
_KEYWORDS = frozenset({"type", "enum", "required", "properties", "additionalProperties", "items", "minimum"})
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(instance: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every way instance breaks schema, as "<path>: <problem>" lines (at most ERRORS_MAX); [] when valid."""
    errors: list[str] = []
    _check(instance, schema, "$", errors)
    return errors[:ERRORS_MAX]


def _check(value: Any, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if len(errors) >= ERRORS_MAX:
        return
    unknown = set(schema) - _KEYWORDS - _ANNOTATIONS
    if unknown:
        raise ValueError(
            f"{path}: schema keyword(s) {sorted(unknown)} are outside the supported subset "
            f"({', '.join(sorted(_KEYWORDS))})"
        )
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[name](value) for name in names):
            errors.append(f"{path}: {value!r:.80} is not of type {' or '.join(names)}")
            return
    if "enum" in schema and not any(_same(value, choice) for choice in schema["enum"]):
        errors.append(f"{path}: {value!r:.80} is not one of {schema['enum']}")
    if "minimum" in schema and _TYPES["number"](value) and value < schema["minimum"]:
        errors.append(f"{path}: {value!r} is below the minimum {schema['minimum']}")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                errors.append(f"{path}: required field {name!r} is missing")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            where = f"{path}.{name}"
            if name in properties:
                _check(item, properties[name], where, errors)
            elif extra is False:
                errors.append(f"{where}: field not allowed here (allowed: {', '.join(properties)})")
            elif isinstance(extra, dict):
                _check(item, extra, where, errors)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], f"{path}[{index}]", errors)


def _same(value: Any, choice: Any) -> bool:
    """JSON equality: 1 and True are different values (Python says they are equal)."""
    return (
        type(value) is type(choice) and value == choice
        if isinstance(value, bool) or isinstance(choice, bool)
        else value == choice
    )
