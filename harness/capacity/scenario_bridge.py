"""Predict a scenario's run before it happens: a scenario's system, load, faults and seed as the model's input.

Why: the report lays the model's prediction over the measured run, and both
must start from the same scenario file. The model's clock is the load's clock
(profile time 0); a history's clock is the run's, so the report shifts the
prediction by the history's meta.load_start_s (see shifted_metrics).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from harness.capacity.config import ModelConfig, NoScaling
from harness.capacity.model import simulate
from harness.capacity.prediction import Prediction
from harness.capacity.skew import partition_weights

__all__ = ["config_for_system", "predict_scenario", "shifted_metrics"]


def config_for_system(system: Any, generator: Any = None, base: ModelConfig | None = None) -> ModelConfig:
    """base (service times, policies) with the scenario system's structure: consumers, partitions,
    batch size, high-water mark; and, given the load's GeneratorConfig, its hot-key partition skew."""
    base = base or ModelConfig()
    changes: dict[str, Any] = {
        "consumers": int(system.consumers),
        "partitions": int(system.partitions),
        "batch_size_max": int(system.batch_size),
        "backlog_high_water_events": int(system.high_water_mark),
    }
    if generator is not None:
        changes["partition_weights"] = partition_weights(generator, int(system.partitions))
    elif base.partition_weights is not None and len(base.partition_weights) != int(system.partitions):
        changes["partition_weights"] = None
    scaling = base.scaling
    if not isinstance(scaling, NoScaling) and not (
        scaling.consumers_min <= changes["consumers"] <= scaling.consumers_max
    ):
        raise ValueError(
            f'"consumers" ({changes["consumers"]}) of the scenario is outside the base scaling bounds '
            f"[{scaling.consumers_min}, {scaling.consumers_max}]; change one of them"
        )
    return dataclasses.replace(base, **changes)


def predict_scenario(scenario: Any, base: ModelConfig | None = None) -> Prediction:
    """The model's prediction for a harness.scenario.Scenario: its load profile, faults and seed.

    base carries what a scenario does not say (service times: calibrate them
    from an earlier run of the same system).
    """
    generator = getattr(scenario.load, "generator", None)
    config = config_for_system(scenario.system, generator if hasattr(generator, "zipf_exponent") else None, base)
    return simulate(config, scenario.load.profile, scenario.faults, int(scenario.seed))


def shifted_metrics(prediction: Prediction, offset_s: float) -> pd.DataFrame:
    """The prediction's metrics on a run's clock: time_s + offset_s (the history's meta.load_start_s)."""
    metrics = prediction.metrics.copy()
    metrics["time_s"] = metrics["time_s"] + float(offset_s)
    return metrics
