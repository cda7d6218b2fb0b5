"""Fit the model's service times to a measured run, predict another run, and state the prediction error.

Why fitting by simulation (the method of simulated moments) rather than from
batch durations: a history records when each event was sent and applied, not
how long each transaction took or which consumer ran it. The batch time
(overhead + n × per-event cost) shows only through latency and backlog under
the run's own load: light load gives small batches (latency ≈ overhead +
per-event), bursts give full batches (throughput ≈ B / (overhead + B ×
per-event)). So the fit replays the run's accepted arrivals through the model
and moves the two means until the simulated latency quantiles and backlog
match the measured ones; a run with both calm and burst periods separates the
two. The distribution families and their cv come from `base` (not fitted).

Search: a compass search on (log overhead, log per-event), steps halved down
to 1%, bounded by evaluations_max simulations, with one seed throughout
(common random numbers: the objective moves only because the parameters do).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.capacity.config import Deterministic, Distribution, ModelConfig
from harness.capacity.measured import MeasuredRun, measure, offered_arrivals_s
from harness.capacity.model import simulate_arrivals
from harness.capacity.prediction import BACKLOG_METRIC, Prediction
from harness.faults.schedule import FaultSchedule
from harness.history.schema import History

__all__ = ["calibrate", "predict_run", "prediction_error", "base_config_from", "LATENCY_QUANTILES"]

LATENCY_QUANTILES = (10, 25, 50, 75, 90, 95, 99)
EVALUATIONS_MAX = 80


def base_config_from(history: History, base: ModelConfig | None = None) -> ModelConfig:
    """The structure the fit keeps fixed: `base`, else meta.extra["system"] (consumers, partitions, batch_size,
    high_water_mark) over ModelConfig's defaults."""
    if base is not None:
        return base
    system: Mapping[str, Any] = dict(history.meta.extra.get("system", {}) or {})
    kwargs: dict[str, Any] = {}
    for ours, theirs in (("consumers", "consumers"), ("partitions", "partitions"),
                         ("batch_size_max", "batch_size"), ("backlog_high_water_events", "high_water_mark")):  # fmt: skip
        if theirs in system:
            kwargs[ours] = int(system[theirs])
    return ModelConfig(**kwargs)


def _with_mean(dist: Distribution, mean_s: float) -> Distribution:
    if isinstance(dist, Deterministic):
        return Deterministic(mean_s)
    return dataclasses.replace(dist, mean_s=mean_s)


def _features(latency_s: np.ndarray, backlog: np.ndarray) -> np.ndarray:
    """What the fit matches: log latency quantiles, log(1 + peak and mean backlog)."""
    if len(latency_s) == 0:
        return np.full(len(LATENCY_QUANTILES) + 2, np.nan)
    q = np.percentile(latency_s, LATENCY_QUANTILES)
    return np.concatenate([np.log(np.maximum(q, 1e-6)), np.log1p([backlog.max(initial=0.0), backlog.mean()])])


def _simulated_features(config: ModelConfig, arrivals_s: np.ndarray, duration_s: float,
                        faults: FaultSchedule | None, seed: int, basis: str) -> np.ndarray:  # fmt: skip
    p = simulate_arrivals(config, arrivals_s.tolist(), duration_s, faults, seed)
    assert p.trace is not None  # simulate_arrivals keeps the trace unless asked not to
    m = p.metrics
    backlog = m.loc[(m["metric"] == BACKLOG_METRIC) & m["partition"].isna(), "value"].to_numpy(float)
    return _features(p.trace.latency_s_to(basis), backlog)


def calibrate(
    history: History,
    base: ModelConfig | None = None,
    *,
    faults: FaultSchedule | None = None,
    seed: int = 0,
    evaluations_max: int = EVALUATIONS_MAX,
) -> ModelConfig:
    """A ModelConfig whose overhead and per-event means reproduce the run's latency and backlog.

    `base` gives the structure (consumers, partitions, batch size, families);
    pass the run's `faults` if it had any, or their windows distort the fit.
    Raises ValueError when the history cannot be fitted (no accepted events,
    no apply times).
    """
    if not 4 <= evaluations_max <= 10_000:
        raise ValueError(f'"evaluations_max" must be within [4, 10000], got {evaluations_max}')
    measured = measure(history)
    if len(measured.latency_s) < 100:
        raise ValueError(f"the run has {len(measured.latency_s)} applied events with a latency; fit needs >= 100")
    base = base_config_from(history, base)
    # Replay what was accepted; the run already did its shedding.
    fit_base = dataclasses.replace(base, backlog_high_water_events=None)
    arrivals_s = measured.accepted_invoke_s
    duration_s = float(arrivals_s[-1]) + 1e-6
    target = _features(measured.latency_s, measured.backlog_total)

    evaluations: dict = {}

    def loss(x: tuple) -> float:
        key = (round(x[0], 6), round(x[1], 6))
        if key not in evaluations:
            config = dataclasses.replace(
                fit_base, overhead=_with_mean(base.overhead, math.exp(x[0])),
                per_event=_with_mean(base.per_event, math.exp(x[1])),
            )  # fmt: skip
            got = _simulated_features(config, arrivals_s, duration_s, faults, seed, measured.latency_basis)
            evaluations[key] = float(np.sum((got - target) ** 2)) if np.all(np.isfinite(got)) else math.inf
        return evaluations[key]

    # Start: at light load a batch holds about one event, so its time is near the
    # fastest latencies; split it evenly between overhead and per-event cost. Latencies
    # to the transaction's start leave the batch time out: start from the median there.
    q = 50 if measured.latency_basis == "start" else 5
    fast_s = max(float(np.percentile(measured.latency_s, q)), 1e-4)
    x = (math.log(fast_s / 2), math.log(fast_s / 2))
    best = loss(x)
    step = math.log(2.0)
    while step > math.log(1.01) and len(evaluations) < evaluations_max:
        moved = False
        for dx in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
            if len(evaluations) >= evaluations_max:
                break
            trial = (x[0] + dx[0], x[1] + dx[1])
            value = loss(trial)
            if value < best:
                x, best, moved = trial, value, True
                break
        if not moved:
            step /= 2.0
    return dataclasses.replace(
        base, overhead=_with_mean(base.overhead, math.exp(x[0])), per_event=_with_mean(base.per_event, math.exp(x[1]))
    )


def predict_run(config: ModelConfig, history: History, faults: FaultSchedule | None = None,
                seed: int = 0) -> Prediction:  # fmt: skip
    """Simulate a measured run's offered arrivals (every first submission of a valid body) with config.

    Replaying the run's own send times removes arrival noise from the
    comparison; simulate(config, profile, ...) is the a-priori alternative.
    """
    arrivals_s = offered_arrivals_s(history)
    if len(arrivals_s) == 0:
        raise ValueError("the history has no submissions to replay")
    return simulate_arrivals(config, arrivals_s.tolist(), float(arrivals_s[-1]) + 1e-6, faults, seed)


def _error(predicted: float | None, measured: float | None) -> dict:
    if predicted is None or measured is None or not (math.isfinite(predicted) and math.isfinite(measured)):
        return {"predicted": predicted, "measured": measured, "error": None, "error_rel": None}
    return {
        "predicted": predicted,
        "measured": measured,
        "error": predicted - measured,
        "error_rel": (predicted - measured) / measured if measured != 0 else None,
    }


def prediction_error(prediction: Prediction, measured_history: History) -> dict:
    """Predicted against measured: latency_ms_p50/p95/p99, backlog_events_peak, drain_s_after_last_arrival,
    drain_s_after_peak; each {predicted, measured, error, error_rel} (None where one side has no value),
    and "latency_basis": "commit", or "start" when the history stamps the transaction's start (applied_s),
    in which case the predicted percentiles are taken on the same basis from the prediction's trace."""
    measured: MeasuredRun = measure(measured_history)
    predicted = {name: getattr(prediction, name) for name in ("latency_ms_p50", "latency_ms_p95", "latency_ms_p99")}
    if measured.latency_basis == "start":
        if prediction.trace is None:
            raise ValueError("the history stamps transaction starts (applied_s): the prediction needs its trace "
                             "(simulate with keep_trace=True) to be compared on that basis")  # fmt: skip
        latency_ms = prediction.trace.latency_s_to("start") * 1000.0
        if len(latency_ms):
            values = np.percentile(latency_ms, [50, 95, 99])
            predicted = dict(zip(predicted, (float(v) for v in values)))
    for name in ("backlog_events_peak", "drain_s_after_last_arrival", "drain_s_after_peak"):
        predicted[name] = getattr(prediction, name)
    out: dict = {name: _error(value, getattr(measured, name)) for name, value in predicted.items()}
    out["latency_basis"] = measured.latency_basis
    return out
