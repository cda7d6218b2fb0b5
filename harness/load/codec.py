"""Load profiles to and from plain dicts: the one JSON spelling of a profile.

Why: the driver hands a profile to the Locust child process as JSON, the
scenario loader reads the same shape from YAML, and capacity plans name the
same kinds. One codec keeps the kind names ("steady", "micro_burst", ...) and
field names identical everywhere. Bad input raises ValueError naming the field
(with its path inside a sequence) and the fix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from harness.load.profile import MicroBurst, Ramp, Sequence, Spike, Steady, Surge

__all__ = ["PROFILE_KINDS", "profile_to_dict", "profile_from_dict", "kind_of"]

# kind name -> profile class. The names are the public vocabulary of scenario files.
PROFILE_KINDS: Mapping[str, type] = {
    "steady": Steady,
    "ramp": Ramp,
    "micro_burst": MicroBurst,
    "spike": Spike,
    "surge": Surge,
    "sequence": Sequence,
}
_KIND_OF_CLASS = {cls: kind for kind, cls in PROFILE_KINDS.items()}

# A sequence nested in a sequence in a ... must end somewhere: a cyclic or
# machine-generated document should fail with a sentence, not a RecursionError.
_DEPTH_MAX = 16


def kind_of(profile: Any) -> str:
    """The kind name of a profile value ("steady", "micro_burst", ...)."""
    try:
        return _KIND_OF_CLASS[type(profile)]
    except KeyError:
        raise ValueError(
            f"profile: {type(profile).__name__} is not a known profile; use one of "
            f"{', '.join(c.__name__ for c in PROFILE_KINDS.values())}"
        ) from None


def profile_to_dict(profile: Any) -> dict:
    """A JSON-ready dict: {"kind": ..., <fields>}; a sequence carries "parts": [...]."""
    kind = kind_of(profile)
    if kind == "sequence":
        return {"kind": kind, "parts": [profile_to_dict(p) for p in profile.parts]}
    out: dict = {"kind": kind}
    for f in dataclasses.fields(profile):
        out[f.name] = getattr(profile, f.name)
    return out


def profile_from_dict(data: Mapping[str, Any], where: str = "profile") -> Any:
    """Build a profile from a dict made by profile_to_dict (or written by a person).

    `where` prefixes error messages, so a scenario loader can pass "load.profile".
    """
    return _from_dict(data, where, 0)


def _from_dict(data: Any, where: str, depth: int) -> Any:
    if depth > _DEPTH_MAX:
        raise ValueError(f"{where}: sequences nested deeper than {_DEPTH_MAX} levels; flatten them")
    if not isinstance(data, Mapping):
        raise ValueError(f'{where}: expected a mapping with a "kind", got {type(data).__name__}')
    kind = data.get("kind")
    if kind not in PROFILE_KINDS:
        raise ValueError(f"{where}.kind: {kind!r} is not a profile kind; use one of {', '.join(PROFILE_KINDS)}")
    cls = PROFILE_KINDS[kind]

    if cls is Sequence:
        unknown = sorted(set(data) - {"kind", "parts"})
        if unknown:
            raise ValueError(f'{where}.{unknown[0]}: not a field of a sequence; use "parts"')
        parts = data.get("parts")
        if not isinstance(parts, (list, tuple)) or not parts:
            raise ValueError(f"{where}.parts: must be a non-empty list of profiles, got {parts!r}")
        return Sequence(parts=tuple(_from_dict(p, f"{where}.parts[{i}]", depth + 1) for i, p in enumerate(parts)))

    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields) - {"kind"})
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: not a field of a {kind} profile; use one of {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING:
                raise ValueError(f"{where}.{name}: missing; a {kind} profile needs it")
            continue
        value = data[name]
        # bool is an int in Python; "true" as a rate is a typo, not a number.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}.{name}: must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where}.{name}: must be a finite number, got {value!r}")
        kwargs[name] = float(value)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        # The dataclass names the field as "name"; add where it sits.
        raise ValueError(f"{where}: {exc}") from None
