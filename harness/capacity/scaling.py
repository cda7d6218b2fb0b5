"""Scaling decisions: how many consumers a policy wants now, as pure functions of what it can observe.

Why apart from the model: a policy is the thing plans compare, and its rules
(thresholds, cooldown, the forecast) must be readable and testable without a
simulation. The model calls these every interval_s and applies the answer.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from harness.capacity.config import PredictiveScaling, ReactiveScaling

__all__ = ["reactive_target", "predictive_target", "linear_forecast", "RateWindow"]


def reactive_target(policy: ReactiveScaling, current: int, backlog_events: int, since_change_s: float) -> int:
    """Add `step` above backlog_high_events, remove `step` below backlog_low_events, at most once per cooldown_s."""
    if since_change_s < policy.cooldown_s:
        return current
    if backlog_events > policy.backlog_high_events:
        return min(policy.consumers_max, current + policy.step)
    if backlog_events < policy.backlog_low_events:
        return max(policy.consumers_min, current - policy.step)
    return current


def linear_forecast(points: Iterable[tuple], at_s: float) -> float:
    """Least-squares line through (time_s, rate_per_s) points, evaluated at at_s; never below 0."""
    points = list(points)
    n = len(points)
    if n == 0:
        return 0.0
    if n == 1:
        return max(0.0, points[0][1])
    t_mean = sum(t for t, _ in points) / n
    r_mean = sum(r for _, r in points) / n
    var = sum((t - t_mean) ** 2 for t, _ in points)
    slope = sum((t - t_mean) * (r - r_mean) for t, r in points) / var if var > 0 else 0.0
    return max(0.0, r_mean + slope * (at_s - t_mean))


class RateWindow:
    """The arrival rate of the last window_s, one point per interval (a bounded deque)."""

    def __init__(self, policy: PredictiveScaling) -> None:
        self.window_points = max(2, int(round(policy.window_s / policy.interval_s)))
        self.points: deque[tuple[float, float]] = deque(maxlen=self.window_points)
        self.interval_s = policy.interval_s
        self._offered_before = 0

    def add(self, now_s: float, offered_total: int) -> None:
        """Record the arrivals (shed ones included: the demand) since the previous call."""
        self.points.append((now_s - self.interval_s / 2, (offered_total - self._offered_before) / self.interval_s))
        self._offered_before = offered_total

    def forecast(self, at_s: float) -> float:
        # A trend fitted on a few noisy seconds swings wildly: extrapolate only once
        # half the window is in; until then use the mean rate.
        if not self.points:
            return 0.0
        if len(self.points) * 2 >= self.window_points:
            return linear_forecast(self.points, at_s)
        return sum(r for _, r in self.points) / len(self.points)


def predictive_target(policy: PredictiveScaling, current: int, forecast_per_s: float, backlog_events: int,
                      since_change_s: float) -> int:  # fmt: skip
    """ceil((forecast + backlog / backlog_drain_s) / events_per_consumer_per_s) within the bounds;
    up at once, down by one at most once per cooldown_s."""
    demand_per_s = forecast_per_s + backlog_events / policy.backlog_drain_s
    need = math.ceil(demand_per_s / policy.events_per_consumer_per_s - 1e-9)
    need = min(policy.consumers_max, max(policy.consumers_min, need))
    if need > current:
        return need
    if need < current and since_change_s >= policy.cooldown_s:
        return current - 1
    return current
