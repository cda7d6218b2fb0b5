"""Scenarios: YAML files validated once into frozen, typed values."""

from harness.scenario.explore_bounds import ExploreSpec
from harness.scenario.loader import load_scenario, scenario_from_mapping, with_overrides
from harness.scenario.model import VARIANTS, LoadSpec, PhaseSpec, Scenario, StackMode, StackSpec, SystemSpec, Variant
from harness.scenario.serialise import scenario_to_mapping, scenario_to_yaml

__all__ = [
    "VARIANTS",
    "ExploreSpec",
    "LoadSpec",
    "PhaseSpec",
    "Scenario",
    "StackMode",
    "StackSpec",
    "SystemSpec",
    "Variant",
    "load_scenario",
    "scenario_from_mapping",
    "scenario_to_mapping",
    "scenario_to_yaml",
    "with_overrides",
]
