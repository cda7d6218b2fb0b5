"""A Scenario back to scenario-file form: what `scenario.resolved.yaml` holds and a replay reads.

Why from the typed value and not the file's text: the run may differ from the
file (`--variant`, `--seed`, an explorer's episode). Writing the Scenario that
ran, every default spelled out and repeats expanded, makes the replay run
exactly that; `scenario_from_mapping(scenario_to_mapping(s)) == s` is tested
for every shipped scenario.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

import yaml

from harness.faults.schedule import LinkDown, ProcessFault, ToxicFault
from harness.load.codec import profile_to_dict
from harness.scenario.model import Scenario

__all__ = ["scenario_to_yaml", "scenario_to_mapping", "fault_to_mapping", "section_to_mapping"]


def _plain(value: Any) -> Any:
    """YAML-safe: enums by their spelling, tuples and sets as lists, mappings as dicts."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (frozenset, set)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def section_to_mapping(value: Any) -> dict[str, Any]:
    """One section (a StackSpec, a PhaseSpec, ...) as its file form: every field, plain values."""
    return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def fault_to_mapping(fault: ToxicFault | LinkDown | ProcessFault) -> dict[str, Any]:
    """One fault as a `faults:` entry (the loader's spelling)."""
    if isinstance(fault, ToxicFault):
        return {"kind": "toxic", **section_to_mapping(fault)}
    if isinstance(fault, LinkDown):
        return {"kind": "down", **section_to_mapping(fault)}
    if isinstance(fault, ProcessFault):
        return {"kind": "process", **section_to_mapping(fault)}
    raise TypeError(f"not a fault: {fault!r}")


def scenario_to_mapping(scenario: Scenario) -> dict[str, Any]:
    """Every setting of the scenario, in the order a scenario file lists them."""
    load = scenario.load
    out: dict[str, Any] = {
        "name": scenario.name,
        "description": scenario.description,
        "seed": scenario.seed,
        "duration_s_max": scenario.duration_s_max,
        "stack": section_to_mapping(scenario.stack),
        "system": section_to_mapping(scenario.system),
        "load": {
            "profile": profile_to_dict(load.profile),
            "generator": load.generator.to_dict(),
            "retry": section_to_mapping(load.retry),
            **{
                name: _plain(getattr(load, name))
                for name in ("model", "users", "workers", "request_timeout_s", "think_time_s", "ops_max")
            },
        },
        "faults": [fault_to_mapping(f) for f in scenario.faults],
        "phases": section_to_mapping(scenario.phases),
    }
    if scenario.invariants is not None:
        out["invariants"] = _plain(scenario.invariants.to_json())
    if scenario.explore is not None:
        out["explore"] = section_to_mapping(scenario.explore)
    return out


def scenario_to_yaml(scenario: Scenario) -> str:
    """The text of `scenario.resolved.yaml` (and of an explorer's reproducer)."""
    return yaml.safe_dump(scenario_to_mapping(scenario), sort_keys=False, allow_unicode=True)
