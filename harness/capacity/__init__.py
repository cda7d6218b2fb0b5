"""Capacity model: a SimPy model of the pipeline, proven on queueing theory, calibrated from a run, plans compared.

The only package of the harness that imports SimPy (in `model.py`); the rest of
the harness speaks ModelConfig, Prediction and the plans API. See docs/capacity.md.
"""

from harness.capacity.calibrate import calibrate, predict_run, prediction_error
from harness.capacity.config import (
    Deterministic,
    Exponential,
    Gamma,
    LogNormal,
    ModelConfig,
    NoScaling,
    Ownership,
    PredictiveScaling,
    ReactiveScaling,
    RetryPolicy,
    Workers,
)
from harness.capacity.fault_map import FaultWindows, map_faults
from harness.capacity.model import simulate, simulate_arrivals
from harness.capacity.plans import Plan, PlanComparison, PlanStudy, Slo, compare_plans
from harness.capacity.plans_file import load_plans_file
from harness.capacity.plans_run import run_plan_file
from harness.capacity.prediction import EventTrace, Outcome, Prediction
from harness.capacity.scenario_bridge import config_for_system, predict_scenario, shifted_metrics
from harness.capacity.synthetic import history_from_prediction

__all__ = [
    "Deterministic",
    "EventTrace",
    "Exponential",
    "FaultWindows",
    "Gamma",
    "LogNormal",
    "ModelConfig",
    "NoScaling",
    "Outcome",
    "Plan",
    "PlanComparison",
    "PlanStudy",
    "Slo",
    "calibrate",
    "compare_plans",
    "config_for_system",
    "history_from_prediction",
    "predict_run",
    "predict_scenario",
    "prediction_error",
    "load_plans_file",
    "run_plan_file",
    "shifted_metrics",
    "Ownership",
    "Prediction",
    "PredictiveScaling",
    "ReactiveScaling",
    "RetryPolicy",
    "Workers",
    "map_faults",
    "simulate",
    "simulate_arrivals",
]
