"""A scenario file predicted by the model: same structure, load, faults and seed as the live run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.capacity import ModelConfig, ReactiveScaling
from harness.capacity.scenario_bridge import config_for_system, predict_scenario, shifted_metrics
from harness.load.generator import GeneratorConfig
from harness.scenario.model import SystemSpec

REPO = Path(__file__).resolve().parents[2]


def test_config_takes_the_scenario_system_structure_and_hot_keys():
    config = config_for_system(SystemSpec(consumers=3, partitions=8, batch_size=64, high_water_mark=500),
                               GeneratorConfig())  # fmt: skip
    assert (config.consumers, config.partitions, config.batch_size_max, config.backlog_high_water_events) == (
        3, 8, 64, 500)  # fmt: skip
    assert len(config.partition_weights) == 8 and max(config.partition_weights) > 1 / 8


def test_scenario_consumers_outside_base_scaling_bounds_is_refused():
    base = ModelConfig(consumers=4, scaling=ReactiveScaling(100, 10, consumers_min=4, consumers_max=8))
    with pytest.raises(ValueError, match="consumers"):
        config_for_system(SystemSpec(consumers=2), None, base)


def test_a_shipped_scenario_is_predicted_with_its_faults():
    from harness.scenario.loader import load_scenario

    scenario = load_scenario(REPO / "scenarios" / "consumer_kill_loop.yaml")
    prediction = predict_scenario(scenario)
    assert prediction.config.consumers == scenario.system.consumers
    assert prediction.arrivals_count > 0 and prediction.completed
    shifted = shifted_metrics(prediction, 5.0)
    assert shifted["time_s"].min() == pytest.approx(5.0)
