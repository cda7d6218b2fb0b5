"""Scaling rules as pure functions: thresholds, cooldown, bounds, the forecast."""

from __future__ import annotations

import pytest

from harness.capacity import PredictiveScaling, ReactiveScaling
from harness.capacity.scaling import RateWindow, linear_forecast, predictive_target, reactive_target

REACTIVE = ReactiveScaling(backlog_high_events=100, backlog_low_events=10, consumers_min=2, consumers_max=5,
                           cooldown_s=30, step=2)  # fmt: skip
PREDICTIVE = PredictiveScaling(events_per_consumer_per_s=100, consumers_min=1, consumers_max=10, horizon_s=10,
                               window_s=10, backlog_drain_s=20, cooldown_s=30)  # fmt: skip


def test_reactive_steps_within_bounds_and_waits_for_the_cooldown():
    assert reactive_target(REACTIVE, 2, 101, since_change_s=30) == 4
    assert reactive_target(REACTIVE, 4, 101, since_change_s=30) == 5  # capped at consumers_max
    assert reactive_target(REACTIVE, 2, 101, since_change_s=29.9) == 2  # cooling down
    assert reactive_target(REACTIVE, 3, 9, since_change_s=60) == 2  # floored at consumers_min
    assert reactive_target(REACTIVE, 3, 50, since_change_s=60) == 3  # between the marks: hold


def test_linear_forecast_extrapolates_a_ramp_and_never_goes_negative():
    ramp = [(t, 10.0 * t) for t in range(10)]
    assert linear_forecast(ramp, 20.0) == pytest.approx(200.0)
    falling = [(t, 100.0 - 20.0 * t) for t in range(5)]
    assert linear_forecast(falling, 100.0) == 0.0


def test_rate_window_uses_the_mean_until_half_full_then_the_trend():
    window = RateWindow(PREDICTIVE)  # 10 points of 1 s
    offered = 0
    for second, rate in enumerate([100, 300, 500], start=1):
        offered += rate
        window.add(float(second), offered)
    assert window.forecast(100.0) == pytest.approx(300.0)  # 3 of 10 points: mean
    for second, rate in enumerate([700, 900], start=4):
        offered += rate
        window.add(float(second), offered)
    assert window.forecast(5.5) == pytest.approx(1100.0)  # 5 of 10: trend, 200/s per s, half a second on


def test_predictive_provisions_for_forecast_and_backlog_up_at_once_down_one_by_one():
    # (450/s + 1000 events / 20 s) / 100 per consumer = 5.
    assert predictive_target(PREDICTIVE, 1, 450.0, 1000, since_change_s=0) == 5
    assert predictive_target(PREDICTIVE, 8, 450.0, 1000, since_change_s=0) == 8  # cooling down
    assert predictive_target(PREDICTIVE, 8, 450.0, 1000, since_change_s=30) == 7
    assert predictive_target(PREDICTIVE, 3, 5000.0, 0, since_change_s=0) == 10  # capped
