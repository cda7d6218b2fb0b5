"""The resolved scenario: the typed Scenario written back to file form reads back as the same Scenario.

This is what makes a replay honest: `scenario.resolved.yaml` is written from the Scenario that ran
(after `--variant` and `--seed`), so `ledgerchaos run <run>/scenario.resolved.yaml` runs that again.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import ScenarioError
from harness.faults.schedule import Link, ProcessAction
from harness.load.config import LoadModel
from harness.scenario import (
    ExploreSpec,
    Variant,
    load_scenario,
    scenario_from_mapping,
    scenario_to_mapping,
    scenario_to_yaml,
    with_overrides,
)

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p for p in (REPO / "scenarios").rglob("*.yaml") if "plans" not in p.parts)


@pytest.mark.parametrize("path", SCENARIOS, ids=[str(p.relative_to(REPO / "scenarios")) for p in SCENARIOS])
def test_every_shipped_scenario_survives_the_round_trip(path):
    scenario = load_scenario(path)
    again = scenario_from_mapping(yaml.safe_load(scenario_to_yaml(scenario)))
    assert again == scenario
    for f in dataclasses.fields(scenario):  # equality of the parts too, so a failure names the field
        if f.compare:
            assert getattr(again, f.name) == getattr(scenario, f.name), f.name


def test_the_overrides_are_what_the_resolved_file_holds(tmp_path):
    scenario = load_scenario(REPO / "scenarios" / "variants" / "no_lease.yaml")
    ran = with_overrides(scenario, seed=4242, variant="correct")
    assert ran.seed == 4242 and ran.system.variant is Variant.CORRECT
    resolved = tmp_path / "scenario.resolved.yaml"
    resolved.write_text(scenario_to_yaml(ran), encoding="utf-8")
    replayed = load_scenario(resolved)
    assert replayed == ran
    assert replayed != scenario  # the file's own variant and seed are not what a replay runs
    assert yaml.safe_load(resolved.read_text())["system"]["variant"] == "correct"


def test_a_repeat_is_written_expanded_and_reads_back_the_same():
    scenario = load_scenario(REPO / "scenarios" / "consumer_kill_loop.yaml")
    faults = scenario_to_mapping(scenario)["faults"]
    assert len(faults) == len(scenario.faults) > 1 and all("repeat" not in f for f in faults)


def test_a_wrong_override_names_the_option():
    scenario = load_scenario(REPO / "scenarios" / "steady.yaml")
    with pytest.raises(ScenarioError, match="--variant: 'no_leese' is not a variant; did you mean 'no_lease'"):
        with_overrides(scenario, variant="no_leese")
    with pytest.raises(ScenarioError, match="--seed: -1"):
        with_overrides(scenario, seed=-1)


def test_the_scenario_holds_typed_values_not_spellings():
    scenario = load_scenario(REPO / "scenarios" / "explore" / "broker_and_consumers.yaml")
    assert isinstance(scenario.system.variant, Variant)
    assert isinstance(scenario.load.model, LoadModel)
    assert isinstance(scenario.explore, ExploreSpec)
    assert all(isinstance(link, Link) for link in scenario.explore.links)
    assert all(isinstance(action, ProcessAction) for action in scenario.explore.process_actions)
    assert not hasattr(scenario, "raw")


def test_loading_a_scenario_with_explore_bounds_imports_no_search_engine():
    path = REPO / "scenarios" / "explore" / "broker_and_consumers.yaml"
    code = (
        "import sys; from harness.scenario import load_scenario; "
        f"assert load_scenario({str(path)!r}).explore is not None; "
        "print(sorted(m for m in sys.modules if m.startswith(('hypothesis', 'harness.explore'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_scenario_names_exactly_the_variants_the_reference_system_has():
    """Two spellings of one list: the harness starts the system as processes and does not import it."""
    from reference_system.settings import Variant as SystemVariant

    assert [v.value for v in Variant] == [v.value for v in SystemVariant]
