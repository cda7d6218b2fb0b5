"""Field checks shared by the YAML files the harness reads (scenarios, capacity plans).

Why one module: both files must speak to a user the same way; every error
names the field path, the value and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import ScenarioError

__all__ = ["join_path", "mapping_at", "known_keys", "number_at", "enum_at"]


def join_path(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def mapping_at(value: Any, where: str, top: str = "scenario") -> Mapping[str, Any]:
    """value when it is a mapping; `top` names the file's root in the error when where is empty."""
    if not isinstance(value, Mapping):
        kind = "nothing" if value is None else type(value).__name__
        raise ScenarioError(f"{where or top}: expected a mapping of settings, got {kind}")
    return value


def known_keys(section: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Refuse a key not in allowed, with a "did you mean" or the list of allowed keys."""
    allowed = tuple(allowed)
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
            raise ScenarioError(f"{join_path(where, key)}: unknown setting{hint}")


def number_at(value: Any, where: str, low: float = 0.0, high: float = float("inf"), whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
        kind = "a whole number" if whole else "a number"
        raise ScenarioError(f"{where}: {value!r} is not {kind}")
    if not low <= value <= high:
        raise ScenarioError(f"{where}: {value!r} is outside [{low:g}, {high:g}]")
    return value


def enum_at(enum_type, value: Any, where: str):
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum_type)
        raise ScenarioError(f"{where}: {value!r} is not one of {choices}") from None
