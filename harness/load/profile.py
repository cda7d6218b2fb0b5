"""Load profiles: one arrival-rate function λ(t) that drives both Locust and the SimPy model.

Why one definition: the live run and the capacity model must see identical input,
so that prediction and measurement can be laid side by side. A profile is a
frozen value; `arrival_times` turns it into concrete send times with a seeded
generator (a non-homogeneous Poisson process by thinning, Lewis & Shedler 1979),
and both consumers call that same function.

Time is seconds from the start of the load phase; rates are events per second.
Nothing here imports Locust or SimPy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "LoadProfile",
    "Steady",
    "Ramp",
    "MicroBurst",
    "Spike",
    "Surge",
    "Sequence",
    "AnyProfile",
    "arrival_times",
    "expected_arrivals",
    "ARRIVALS_MAX",
]

# A hard bound on how many arrivals one call may produce: a profile with a typo
# (rate 1e9) must fail loudly instead of filling memory.
ARRIVALS_MAX = 20_000_000


@runtime_checkable
class LoadProfile(Protocol):
    """An open-model load: arrival rate at time t, for a bounded duration."""

    duration_s: float

    def rate_per_s(self, t_s: float) -> float:
        """Arrival rate (events/s) at t_s seconds into the profile; 0 outside it."""

    def rate_per_s_max(self) -> float:
        """An upper bound of rate_per_s over the whole profile (for thinning)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class Steady:
    """A constant rate."""

    base_rate_per_s: float
    duration_s: float

    def __post_init__(self) -> None:
        _require(self.base_rate_per_s >= 0, f'"base_rate_per_s" must be >= 0, got {self.base_rate_per_s}')
        _require(self.duration_s > 0, f'"duration_s" must be > 0, got {self.duration_s}')

    def rate_per_s(self, t_s: float) -> float:
        return self.base_rate_per_s if 0 <= t_s < self.duration_s else 0.0

    def rate_per_s_max(self) -> float:
        return self.base_rate_per_s


@dataclass(frozen=True)
class Ramp:
    """A linear change from start_rate_per_s to end_rate_per_s over duration_s."""

    start_rate_per_s: float
    end_rate_per_s: float
    duration_s: float

    def __post_init__(self) -> None:
        _require(self.start_rate_per_s >= 0, '"start_rate_per_s" must be >= 0')
        _require(self.end_rate_per_s >= 0, '"end_rate_per_s" must be >= 0')
        _require(self.duration_s > 0, f'"duration_s" must be > 0, got {self.duration_s}')

    def rate_per_s(self, t_s: float) -> float:
        if not 0 <= t_s < self.duration_s:
            return 0.0
        share = t_s / self.duration_s
        return self.start_rate_per_s + (self.end_rate_per_s - self.start_rate_per_s) * share

    def rate_per_s_max(self) -> float:
        return max(self.start_rate_per_s, self.end_rate_per_s)


@dataclass(frozen=True)
class MicroBurst:
    """A base rate with short bursts: burst_ms at base × multiplier, every period_s.

    The default (200 ms at 10× every 2 s) is the shape that exposes queues sized
    for the average: the mean rate is only 1.9× the base, the instant rate 10×.
    """

    base_rate_per_s: float
    duration_s: float
    burst_multiplier: float = 10.0
    burst_ms: float = 200.0
    period_s: float = 2.0
    first_burst_s: float = 0.0

    def __post_init__(self) -> None:
        _require(self.base_rate_per_s >= 0, '"base_rate_per_s" must be >= 0')
        _require(self.duration_s > 0, f'"duration_s" must be > 0, got {self.duration_s}')
        _require(self.burst_multiplier >= 1, '"burst_multiplier" must be >= 1')
        _require(self.period_s > 0, '"period_s" must be > 0')
        _require(
            0 < self.burst_ms <= self.period_s * 1000,
            f'"burst_ms" must be > 0 and <= period_s × 1000 ({self.period_s * 1000:g}), got {self.burst_ms}',
        )
        _require(self.first_burst_s >= 0, '"first_burst_s" must be >= 0')

    def in_burst(self, t_s: float) -> bool:
        if t_s < self.first_burst_s:
            return False
        phase_s = (t_s - self.first_burst_s) % self.period_s
        return phase_s < self.burst_ms / 1000.0

    def rate_per_s(self, t_s: float) -> float:
        if not 0 <= t_s < self.duration_s:
            return 0.0
        if self.in_burst(t_s):
            return self.base_rate_per_s * self.burst_multiplier
        return self.base_rate_per_s

    def rate_per_s_max(self) -> float:
        return self.base_rate_per_s * self.burst_multiplier


@dataclass(frozen=True)
class Spike:
    """A base rate with one rectangular spike to peak_rate_per_s at at_s for width_s."""

    base_rate_per_s: float
    peak_rate_per_s: float
    at_s: float
    width_s: float
    duration_s: float

    def __post_init__(self) -> None:
        _require(self.base_rate_per_s >= 0, '"base_rate_per_s" must be >= 0')
        _require(self.peak_rate_per_s >= 0, '"peak_rate_per_s" must be >= 0')
        _require(self.width_s > 0, '"width_s" must be > 0')
        _require(self.duration_s > 0, '"duration_s" must be > 0')
        _require(0 <= self.at_s < self.duration_s, '"at_s" must be inside [0, duration_s)')

    def rate_per_s(self, t_s: float) -> float:
        if not 0 <= t_s < self.duration_s:
            return 0.0
        if self.at_s <= t_s < self.at_s + self.width_s:
            return self.peak_rate_per_s
        return self.base_rate_per_s

    def rate_per_s_max(self) -> float:
        return max(self.base_rate_per_s, self.peak_rate_per_s)


@dataclass(frozen=True)
class Surge:
    """End-of-quarter surge: base, ramp up to peak, hold, ramp down, base again.

    Real closing days do not jump; they climb for a while, stay high, then fall.
    """

    base_rate_per_s: float
    peak_rate_per_s: float
    ramp_up_s: float
    hold_s: float
    ramp_down_s: float
    duration_s: float
    start_s: float = 0.0

    def __post_init__(self) -> None:
        _require(self.base_rate_per_s >= 0, '"base_rate_per_s" must be >= 0')
        _require(self.peak_rate_per_s >= 0, '"peak_rate_per_s" must be >= 0')
        for name in ("ramp_up_s", "hold_s", "ramp_down_s", "start_s"):
            _require(getattr(self, name) >= 0, f'"{name}" must be >= 0')
        _require(self.duration_s > 0, '"duration_s" must be > 0')

    def rate_per_s(self, t_s: float) -> float:
        if not 0 <= t_s < self.duration_s:
            return 0.0
        base, peak = self.base_rate_per_s, self.peak_rate_per_s
        u = t_s - self.start_s
        if u < 0:
            return base
        if u < self.ramp_up_s:
            return base + (peak - base) * u / self.ramp_up_s
        u -= self.ramp_up_s
        if u < self.hold_s:
            return peak
        u -= self.hold_s
        if u < self.ramp_down_s:
            return peak + (base - peak) * u / self.ramp_down_s
        return base

    def rate_per_s_max(self) -> float:
        return max(self.base_rate_per_s, self.peak_rate_per_s)


@dataclass(frozen=True)
class Sequence:
    """Profiles one after another (warm-up steady, then a burst, then steady...)."""

    parts: tuple

    def __post_init__(self) -> None:
        _require(len(self.parts) > 0, '"parts" must hold at least one profile')

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.parts)

    def rate_per_s(self, t_s: float) -> float:
        offset_s = 0.0
        for part in self.parts:
            if t_s < offset_s + part.duration_s:
                return part.rate_per_s(t_s - offset_s) if t_s >= offset_s else 0.0
            offset_s += part.duration_s
        return 0.0

    def rate_per_s_max(self) -> float:
        return max(p.rate_per_s_max() for p in self.parts)


AnyProfile = Steady | Ramp | MicroBurst | Spike | Surge | Sequence


def expected_arrivals(profile: LoadProfile, step_s: float = 0.001) -> float:
    """The integral of λ(t) over the profile (midpoint rule): the mean arrival count."""
    steps = max(1, int(math.ceil(profile.duration_s / step_s)))
    width_s = profile.duration_s / steps
    return sum(profile.rate_per_s((i + 0.5) * width_s) for i in range(steps)) * width_s


def arrival_times(profile: LoadProfile, rng: random.Random) -> Iterator[float]:
    """Yield arrival times (seconds from profile start, increasing) of a Poisson process with rate λ(t).

    Thinning: draw candidates at the bound rate, keep each with probability
    λ(t)/bound. Sub-second shapes are honoured exactly, which Locust's one-second
    shape tick cannot do. Bounded by ARRIVALS_MAX.
    """
    bound_per_s = profile.rate_per_s_max()
    if bound_per_s <= 0:
        return
    t_s = 0.0
    produced = 0
    while True:
        t_s += rng.expovariate(bound_per_s)
        if t_s >= profile.duration_s:
            return
        if rng.random() * bound_per_s < profile.rate_per_s(t_s):
            produced += 1
            if produced > ARRIVALS_MAX:
                raise ValueError(f"the profile produces more than {ARRIVALS_MAX} arrivals; lower its rate or duration")
            yield t_s
