"""Scenarios: YAML files validated once into frozen, typed values."""

from harness.scenario.loader import load_scenario, scenario_from_mapping
from harness.scenario.model import VARIANTS, LoadSpec, PhaseSpec, Scenario, StackMode, StackSpec, SystemSpec

__all__ = [
    "VARIANTS",
    "LoadSpec",
    "PhaseSpec",
    "Scenario",
    "StackMode",
    "StackSpec",
    "SystemSpec",
    "load_scenario",
    "scenario_from_mapping",
]
