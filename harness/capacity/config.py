"""The capacity model's configuration: frozen, checked values (no SimPy here).

Why a separate module: plans files, calibration and the model all speak these
types, and a bad value must fail once, at construction, with a sentence that
names the field, the value and the fix (STYLE habit 8), not deep in a
simulation. Times are seconds, counts are events.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "Deterministic",
    "Exponential",
    "LogNormal",
    "Gamma",
    "Distribution",
    "RetryPolicy",
    "NoScaling",
    "ReactiveScaling",
    "PredictiveScaling",
    "Scaling",
    "Ownership",
    "Workers",
    "ModelConfig",
    "make_sampler",
    "make_batch_sampler",
]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _positive(name: str, value: float) -> None:
    _require(
        isinstance(value, (int, float)) and math.isfinite(value) and value > 0,
        f'"{name}" must be a finite number > 0, got {value!r}',
    )


def _non_negative(name: str, value: float) -> None:
    _require(
        isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
        f'"{name}" must be a finite number >= 0, got {value!r}',
    )


# --- service-time distributions --------------------------------------------


@dataclass(frozen=True)
class Deterministic:
    """Always value_s (M/D/1 service; a fixed transaction overhead)."""

    value_s: float

    def __post_init__(self) -> None:
        _non_negative("value_s", self.value_s)

    @property
    def mean_s(self) -> float:
        return self.value_s

    @property
    def cv(self) -> float:
        return 0.0


@dataclass(frozen=True)
class Exponential:
    """Memoryless service with mean mean_s (M/M/c service)."""

    mean_s: float

    def __post_init__(self) -> None:
        _positive("mean_s", self.mean_s)

    @property
    def cv(self) -> float:
        return 1.0


@dataclass(frozen=True)
class LogNormal:
    """Right-skewed service (database round trips): mean mean_s, coefficient of variation cv."""

    mean_s: float
    cv: float

    def __post_init__(self) -> None:
        _positive("mean_s", self.mean_s)
        _positive("cv", self.cv)


@dataclass(frozen=True)
class Gamma:
    """Gamma service with mean mean_s and coefficient of variation cv (cv=1 is exponential)."""

    mean_s: float
    cv: float

    def __post_init__(self) -> None:
        _positive("mean_s", self.mean_s)
        _positive("cv", self.cv)


Distribution = Deterministic | Exponential | LogNormal | Gamma
DISTRIBUTION_KINDS = {
    "deterministic": Deterministic,
    "exponential": Exponential,
    "lognormal": LogNormal,
    "gamma": Gamma,
}


def make_sampler(dist: Distribution, rng: random.Random) -> Callable[[], float]:
    """A zero-argument function drawing one value of dist from rng.

    Why closures over random.Random: one draw costs a few hundred nanoseconds,
    where a scalar numpy call costs microseconds; the model draws once per batch.
    """
    if isinstance(dist, Deterministic):
        value_s = dist.value_s
        return lambda: value_s
    if isinstance(dist, Exponential):
        rate_per_s = 1.0 / dist.mean_s
        expo = rng.expovariate
        return lambda: expo(rate_per_s)
    if isinstance(dist, LogNormal):
        sigma = math.sqrt(math.log1p(dist.cv**2))
        mu = math.log(dist.mean_s) - sigma * sigma / 2.0
        lognorm = rng.lognormvariate
        return lambda: lognorm(mu, sigma)
    if isinstance(dist, Gamma):
        shape = 1.0 / dist.cv**2
        scale_s = dist.mean_s * dist.cv**2
        gamma = rng.gammavariate
        return lambda: gamma(shape, scale_s)
    raise TypeError(f"not a distribution: {dist!r}; use Deterministic, Exponential, LogNormal or Gamma")


def make_batch_sampler(dist: Distribution, rng: random.Random) -> Callable[[int], float]:
    """A function n -> the total per-event cost of a batch of n events.

    The total of n independent draws is sampled in one call: exactly for
    n == 1, deterministic and exponential (a sum of n exponentials is
    Gamma(n)), and as a gamma with the same mean and variance otherwise. Why:
    a batch of 500 events must cost one draw, not 500, for the model to stay
    fast; the mean and the variance of the batch time are still right.
    """
    single = make_sampler(dist, rng)
    if isinstance(dist, Deterministic):
        value_s = dist.value_s
        return lambda n: n * value_s
    mean_s, cv2 = dist.mean_s, dist.cv**2
    gamma = rng.gammavariate

    def draw(n: int) -> float:
        if n == 1:
            return single()
        return gamma(n / cv2, mean_s * cv2)

    return draw


# --- policies ----------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: sleep ~ U(0, min(cap, base·2^k)) before retry k.

    A transient error counts toward attempts_max; then the batch is applied one
    event at a time and the events that still fail are dead-lettered. An outage
    is retried without bound (k counts the waits), unless bounded_on_outage.
    """

    # Defaults: the reference system's (max_attempts, backoff_ms_base, backoff_ms_max).
    attempts_max: int = 5
    backoff_base_s: float = 0.02
    backoff_cap_s: float = 1.0
    # False (the reference system): an outage (database or broker unreachable) is waited
    # out and never dead-letters; True: outage failures count toward attempts_max too.
    bounded_on_outage: bool = False

    def __post_init__(self) -> None:
        _require(
            isinstance(self.attempts_max, int) and 1 <= self.attempts_max <= 100,
            f'"attempts_max" must be a whole number within [1, 100], got {self.attempts_max!r}',
        )
        # > 0, not >= 0: a zero backoff after a zero-time failure would loop without time passing.
        _positive("backoff_base_s", self.backoff_base_s)
        _positive("backoff_cap_s", self.backoff_cap_s)
        _require(
            isinstance(self.bounded_on_outage, bool),
            f'"bounded_on_outage" must be true or false, got {self.bounded_on_outage!r}',
        )


@dataclass(frozen=True)
class NoScaling:
    """A fixed consumer pool."""


@dataclass(frozen=True)
class ReactiveScaling:
    """Scale on the total backlog: add `step` consumers above backlog_high_events, remove below backlog_low_events.

    Changes are at least cooldown_s apart; a new consumer is paid for at once
    and takes partitions after startup_s (process start, lease acquisition).
    """

    backlog_high_events: int
    backlog_low_events: int
    consumers_min: int
    consumers_max: int
    cooldown_s: float = 30.0
    startup_s: float = 10.0
    interval_s: float = 1.0
    step: int = 1

    def __post_init__(self) -> None:
        _require(self.backlog_low_events >= 0, f'"backlog_low_events" must be >= 0, got {self.backlog_low_events}')
        _require(
            self.backlog_high_events > self.backlog_low_events,
            f'"backlog_high_events" ({self.backlog_high_events}) must be > "backlog_low_events" '
            f"({self.backlog_low_events}); raise it",
        )
        _check_bounds(self.consumers_min, self.consumers_max)
        _non_negative("cooldown_s", self.cooldown_s)
        _non_negative("startup_s", self.startup_s)
        _positive("interval_s", self.interval_s)
        _require(
            isinstance(self.step, int) and self.step >= 1, f'"step" must be a whole number >= 1, got {self.step!r}'
        )


@dataclass(frozen=True)
class PredictiveScaling:
    """Scale on a forecast of the arrival rate, so consumers are ready before the queue grows.

    Every interval_s: fit a straight line to the arrival rate of the last
    window_s, extrapolate it to now + horizon_s (horizon_s should cover
    startup_s), and provision ceil((λ̂ + backlog / backlog_drain_s) /
    events_per_consumer_per_s) consumers within [consumers_min, consumers_max].
    Scale-up is immediate; scale-down removes one consumer at most every cooldown_s.
    """

    events_per_consumer_per_s: float
    consumers_min: int
    consumers_max: int
    horizon_s: float = 30.0
    window_s: float = 30.0
    backlog_drain_s: float = 30.0
    cooldown_s: float = 30.0
    startup_s: float = 10.0
    interval_s: float = 1.0

    def __post_init__(self) -> None:
        _positive("events_per_consumer_per_s", self.events_per_consumer_per_s)
        _check_bounds(self.consumers_min, self.consumers_max)
        _non_negative("horizon_s", self.horizon_s)
        _positive("window_s", self.window_s)
        _positive("backlog_drain_s", self.backlog_drain_s)
        _non_negative("cooldown_s", self.cooldown_s)
        _non_negative("startup_s", self.startup_s)
        _positive("interval_s", self.interval_s)
        _require(
            self.window_s >= 2 * self.interval_s,
            f'"window_s" ({self.window_s}) must be >= 2 × "interval_s" ({self.interval_s}) to fit a trend',
        )


def _check_bounds(consumers_min: int, consumers_max: int) -> None:
    _require(
        isinstance(consumers_min, int) and consumers_min >= 1,
        f'"consumers_min" must be a whole number >= 1, got {consumers_min!r}',
    )
    _require(
        isinstance(consumers_max, int) and consumers_max >= consumers_min,
        f'"consumers_max" ({consumers_max!r}) must be a whole number >= "consumers_min" ({consumers_min})',
    )
    _require(consumers_max <= ModelConfig.CONSUMERS_MAX, f'"consumers_max" must be <= {ModelConfig.CONSUMERS_MAX}')


Scaling = NoScaling | ReactiveScaling | PredictiveScaling


class Ownership(enum.Enum):
    """How consumers share partitions.

    LEASED: one owner per partition at a time (the reference system).
    SHARED: every consumer reads every partition (one consumer group on one
    stream, no ordering per key); with one partition this is a single FIFO
    queue served by c servers — the M/M/c and M/D/1 configurations of the proofs.
    """

    LEASED = "leased"
    SHARED = "shared"


class Workers(enum.Enum):
    """What serves batches.

    PER_PARTITION (the reference system): each owned partition has its own
    worker with its own database connection, so the partitions of one consumer
    apply batches side by side; the consumer's single CPU (one asyncio loop) is
    shared: consumer_cpu_share of every batch's time holds it, first come first
    served. Throughput grows with partitions until the consumers' CPUs saturate.
    PER_CONSUMER: a consumer applies one batch at a time, round robin over its
    partitions (a consumer is a server; the queueing proofs use this).
    """

    PER_PARTITION = "per_partition"
    PER_CONSUMER = "per_consumer"


@dataclass(frozen=True)
class ModelConfig:
    """Everything the model needs apart from the load, the faults and the seed."""

    CONSUMERS_MAX = 1024
    PARTITIONS_MAX = 4096

    # Structural defaults are the reference system's (reference_system/settings.py) and a
    # scenario's (two consumers), so an unconfigured model describes the system under test.
    partitions: int = 4
    consumers: int = 2
    batch_size_max: int = 256
    overhead: Distribution = field(default_factory=lambda: Deterministic(0.002))
    per_event: Distribution = field(default_factory=lambda: Exponential(0.0005))
    # None: no backpressure (a known-bad variant); otherwise shed with 429 at or above it.
    backlog_high_water_events: int | None = 10_000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease_expiry_s: float = 2.0
    scaling: Scaling = field(default_factory=NoScaling)
    ownership: Ownership = Ownership.LEASED
    workers: Workers = Workers.PER_PARTITION
    # PER_PARTITION only: the share of a batch's time spent on the consumer's CPU (decode,
    # validate, detector), the rest waiting on the database. An assumption until calibrated.
    consumer_cpu_share: float = 0.5
    # Each partition's share of the arrivals (normalised); None: uniform. skew.partition_weights
    # computes them from the load generator's hot keys.
    partition_weights: tuple | None = None
    # A share of batch attempts that fail with a transient error even without a fault.
    transient_failure_probability: float = 0.0
    # Downstream call timeout: how long an attempt hangs on a `timeout` toxic before it fails.
    call_timeout_s: float = 2.0
    # How long a refused connection (link down) takes to fail.
    refused_s: float = 0.001
    # Round trips per batch that a latency toxic slows, as the reference consumer makes them:
    # PostgreSQL, one statement in autocommit; Redis, the breaker's HGET, XREADGROUP, and
    # XACK+XDEL in one MULTI.
    postgres_round_trips_per_batch: int = 1
    redis_round_trips_per_batch: int = 3
    sample_interval_s: float = 0.25
    # Limits: simulated time after the profile ends, and accepted arrivals per run.
    drain_s_max: float = 900.0
    events_max: int = 5_000_000

    def __post_init__(self) -> None:
        _require(
            isinstance(self.partitions, int) and 1 <= self.partitions <= self.PARTITIONS_MAX,
            f'"partitions" must be a whole number within [1, {self.PARTITIONS_MAX}], got {self.partitions!r}',
        )
        _require(
            isinstance(self.consumers, int) and 1 <= self.consumers <= self.CONSUMERS_MAX,
            f'"consumers" must be a whole number within [1, {self.CONSUMERS_MAX}], got {self.consumers!r}',
        )
        _require(
            isinstance(self.batch_size_max, int) and 1 <= self.batch_size_max <= 100_000,
            f'"batch_size_max" must be a whole number within [1, 100000], got {self.batch_size_max!r}',
        )
        for name in ("overhead", "per_event"):
            value = getattr(self, name)
            _require(
                isinstance(value, (Deterministic, Exponential, LogNormal, Gamma)),
                f'"{name}" must be a distribution (deterministic, exponential, lognormal, gamma), got {value!r}',
            )
        _require(
            self.overhead.mean_s + self.per_event.mean_s > 0,
            '"overhead" and "per_event" are both zero: a batch would take no time; give one a mean > 0',
        )
        if self.backlog_high_water_events is not None:
            _require(
                isinstance(self.backlog_high_water_events, int) and self.backlog_high_water_events >= 1,
                f'"backlog_high_water_events" must be a whole number >= 1 or null, got {self.backlog_high_water_events!r}',
            )
        _non_negative("lease_expiry_s", self.lease_expiry_s)
        if self.partition_weights is not None:
            weights = self.partition_weights
            _require(
                isinstance(weights, tuple) and len(weights) == self.partitions,
                f'"partition_weights" must hold one number per partition ({self.partitions}), got {weights!r}',
            )
            _require(
                all(isinstance(w, (int, float)) and math.isfinite(w) and w >= 0 for w in weights) and sum(weights) > 0,
                f'"partition_weights" must be numbers >= 0 with a positive sum, got {weights!r}',
            )
        _require(
            isinstance(self.workers, Workers), f'"workers" must be per_partition or per_consumer, got {self.workers!r}'
        )
        _require(
            self.ownership is Ownership.LEASED or self.workers is Workers.PER_CONSUMER,
            '"workers": per_partition needs leased ownership; shared ownership (the proofs\' single queue) '
            "is served per_consumer",
        )
        _require(
            isinstance(self.consumer_cpu_share, (int, float)) and 0.0 <= self.consumer_cpu_share <= 1.0,
            f'"consumer_cpu_share" must be within [0, 1], got {self.consumer_cpu_share!r}',
        )
        _require(
            0.0 <= self.transient_failure_probability < 1.0,
            f'"transient_failure_probability" must be within [0, 1), got {self.transient_failure_probability}',
        )
        _positive("call_timeout_s", self.call_timeout_s)
        _non_negative("refused_s", self.refused_s)
        _positive("sample_interval_s", self.sample_interval_s)
        _non_negative("drain_s_max", self.drain_s_max)
        _require(
            isinstance(self.events_max, int) and self.events_max >= 1,
            f'"events_max" must be a whole number >= 1, got {self.events_max!r}',
        )
        _require(
            isinstance(self.scaling, (NoScaling, ReactiveScaling, PredictiveScaling)),
            f'"scaling" must be NoScaling, ReactiveScaling or PredictiveScaling, got {self.scaling!r}',
        )
        if not isinstance(self.scaling, NoScaling):
            lo, hi = self.scaling.consumers_min, self.scaling.consumers_max
            _require(
                lo <= self.consumers <= hi,
                f'"consumers" ({self.consumers}) is the starting pool and must be within the scaling bounds '
                f"[{lo}, {hi}]; change one of them",
            )
