"""What the model predicts, in the live run's terms: backlog samples, latency percentiles, counts, drain, cost.

Why its own module: the same figure must be computed the same way from a
prediction and from a measured history (calibrate.prediction_error), so the
drain and backlog definitions live here once, as pure numpy functions.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.capacity.config import ModelConfig
from harness.history.schema import METRICS_COLUMNS, conform

__all__ = [
    "Outcome",
    "EventTrace",
    "Prediction",
    "build_prediction",
    "drain_s_after",
    "drain_s_after_peak",
    "BACKLOG_METRIC",
    "POSTED_METRIC",
    "DEAD_LETTERED_METRIC",
    "CONSUMERS_METRIC",
    "RECOVERED_SHARE",
    "METRICS_ROWS_MAX",
]

BACKLOG_METRIC = "ledger_backlog_events"
POSTED_METRIC = "ledger_posted_events_total"
DEAD_LETTERED_METRIC = "ledger_dead_letters_total"
# Model only: consumers paid for (starting ones included); the live gauge is ledger_consumers_alive.
CONSUMERS_METRIC = "ledger_consumers_provisioned"

# A bound on the metrics frame: past it, the per-partition backlog rows are dropped (the
# total stays) and the prediction's notes say so. 4096 partitions × an hour of 250 ms
# samples would be 59 million rows.
METRICS_ROWS_MAX = 5_000_000

# "Drained after the burst" means the total backlog is back to this share of its peak.
RECOVERED_SHARE = 0.1


class Outcome(enum.IntEnum):
    """What became of one arrival."""

    PENDING = 0  # still in the backlog when the simulation stopped
    APPLIED = 1
    SHED = 2  # 429: backlog at or above the high-water mark
    UNAVAILABLE = 3  # 503 / refused: ingest or its broker link down
    DEAD_LETTERED = 4


@dataclass(frozen=True)
class EventTrace:
    """Per-event arrays, indexed by arrival order (NaN where an event never got there)."""

    arrival_s: np.ndarray
    partition: np.ndarray
    enqueue_s: np.ndarray
    start_s: np.ndarray  # first service start of the last delivery
    done_s: np.ndarray  # applied or dead-lettered
    outcome: np.ndarray  # Outcome values

    @property
    def wait_s(self) -> np.ndarray:
        """Time in queue before service, for applied events (the W_q of queueing theory)."""
        applied = self.outcome == Outcome.APPLIED
        return (self.start_s - self.enqueue_s)[applied]

    @property
    def latency_s(self) -> np.ndarray:
        """End-to-end latency (arrival to commit), for applied events, in arrival order."""
        applied = self.outcome == Outcome.APPLIED
        return (self.done_s - self.arrival_s)[applied]

    def latency_s_to(self, basis: str) -> np.ndarray:
        """Latency to the commit ("commit") or to the start of the applying batch ("start"): the latter is
        what a journal stamped with the transaction's now() records (the reference system's applied_at)."""
        if basis == "commit":
            return self.latency_s
        if basis == "start":
            applied = self.outcome == Outcome.APPLIED
            return (self.start_s - self.arrival_s)[applied]
        raise ValueError(f'"basis" must be "commit" or "start", got {basis!r}')


@dataclass(frozen=True)
class Prediction:
    """The model's figures for one run; names match the live run's summary."""

    seed: int
    config: ModelConfig
    end_s: float
    completed: bool  # False when drain_s_max stopped the simulation with events left
    arrivals_count: int
    accepted_count: int
    shed_count: int
    unavailable_count: int
    applied_count: int
    dead_lettered_count: int
    backlog_left_events: int
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_mean: float
    backlog_events_peak: float
    backlog_events_peak_s: float
    drain_s_after_last_arrival: float | None
    drain_s_after_peak: float | None
    consumer_seconds: float
    consumer_utilisation: float  # batch time / consumer-seconds; > 1 when per-partition workers overlap
    consumers_peak: int
    metrics: pd.DataFrame  # METRICS_COLUMNS long format, every sample_interval_s
    trace: EventTrace | None = None
    notes: tuple = ()
    extra: dict = field(default_factory=dict)

    @property
    def shed_share(self) -> float:
        """Share of arrivals not accepted (429 and 503)."""
        if self.arrivals_count == 0:
            return 0.0
        return (self.shed_count + self.unavailable_count) / self.arrivals_count

    def backlog_total(self) -> pd.DataFrame:
        """time_s, value of the total backlog (the partition-less ledger_backlog_events rows)."""
        m = self.metrics
        rows = m[(m["metric"] == BACKLOG_METRIC) & m["partition"].isna()]
        return rows[["time_s", "value"]].reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (no frames)."""
        keys = (
            "seed", "end_s", "completed", "arrivals_count", "accepted_count", "shed_count", "unavailable_count",
            "applied_count", "dead_lettered_count", "backlog_left_events", "latency_ms_p50", "latency_ms_p95",
            "latency_ms_p99", "latency_ms_mean", "backlog_events_peak", "backlog_events_peak_s",
            "drain_s_after_last_arrival", "drain_s_after_peak", "consumer_seconds", "consumer_utilisation",
            "consumers_peak",
        )  # fmt: skip
        out = {k: _jsonable(getattr(self, k)) for k in keys}
        out["shed_share"] = self.shed_share
        out["notes"] = list(self.notes)
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def drain_s_after(time_s: np.ndarray, total: np.ndarray, after_s: float) -> float | None:
    """Seconds from after_s to the first sample at or after it with an empty backlog; None if never."""
    time_s, total = np.asarray(time_s, float), np.asarray(total, float)
    idx = np.nonzero((time_s >= after_s) & (total <= 0))[0]
    return float(time_s[idx[0]] - after_s) if len(idx) else None


def drain_s_after_peak(time_s: np.ndarray, total: np.ndarray, share: float = RECOVERED_SHARE) -> float | None:
    """Seconds from the backlog's peak to the first later sample at or below share × peak; None if never.

    Why a share and not zero: under steady load the backlog of a busy system
    rarely touches zero; "the burst is absorbed" is the useful question.
    """
    time_s, total = np.asarray(time_s, float), np.asarray(total, float)
    if len(total) == 0:
        return None
    k = int(np.argmax(total))
    peak = total[k]
    if peak <= 0:
        return 0.0
    idx = np.nonzero((time_s > time_s[k]) & (total <= share * peak))[0]
    return float(time_s[idx[0]] - time_s[k]) if len(idx) else None


def _by_partition(partition: np.ndarray, times_s: np.ndarray, partitions: int) -> list:
    """times_s split by partition, each slice sorted."""
    order = np.lexsort((times_s, partition))
    bounds = np.searchsorted(partition[order], np.arange(partitions + 1), side="left")
    ordered = times_s[order]
    return [ordered[bounds[p] : bounds[p + 1]] for p in range(partitions)]


def _counts_at(times_s: np.ndarray, grid_s: np.ndarray) -> np.ndarray:
    """How many of times_s are <= each grid point."""
    return np.searchsorted(np.sort(times_s), grid_s, side="right")


def _step_at(timeline: list, grid_s: np.ndarray) -> np.ndarray:
    times = np.asarray([t for t, _ in timeline], float)
    values = np.asarray([v for _, v in timeline], float)
    idx = np.searchsorted(times, grid_s, side="right") - 1
    return values[np.clip(idx, 0, len(values) - 1)]


def _integral(timeline: list, end_s: float) -> tuple[float, int]:
    total, peak = 0.0, 0
    for (t, v), (t_next, _) in zip(timeline, timeline[1:] + [(end_s, 0)]):
        total += v * max(0.0, min(t_next, end_s) - t)
        peak = max(peak, v)
    return total, peak


def build_prediction(
    trace: EventTrace,
    config: ModelConfig,
    seed: int,
    end_s: float,
    completed: bool,
    pool_timeline: list,
    busy_s: float,
    notes: tuple = (),
    *,
    keep_trace: bool = True,
) -> Prediction:
    """Count the figures of a finished simulation (notes: descriptions of faults the model does not represent)."""
    notes = tuple(f"not modelled: {n}" for n in notes)
    outcome = trace.outcome
    applied = outcome == Outcome.APPLIED
    dead = outcome == Outcome.DEAD_LETTERED
    left = applied | dead
    enqueued = ~np.isnan(trace.enqueue_s)
    latency_ms = (trace.done_s[applied] - trace.arrival_s[applied]) * 1000.0
    if len(latency_ms):
        p50, p95, p99 = (float(v) for v in np.percentile(latency_ms, [50, 95, 99]))
        mean = float(latency_ms.mean())
    else:
        p50 = p95 = p99 = mean = math.nan

    step = config.sample_interval_s
    # One sample past end_s, so that the sample after the last event is in the series.
    grid_s = np.arange(0.0, math.ceil(end_s / step) + 1) * step
    frames = []
    total = _counts_at(trace.enqueue_s[enqueued], grid_s) - _counts_at(trace.done_s[left], grid_s)
    per_partition = config.partitions * len(grid_s) <= METRICS_ROWS_MAX
    if per_partition:
        # Sorted once by (partition, time): each partition is a slice, not a mask over all events.
        for p, times_in, times_out in zip(range(config.partitions),
                                          _by_partition(trace.partition[enqueued], trace.enqueue_s[enqueued], config.partitions),
                                          _by_partition(trace.partition[left], trace.done_s[left], config.partitions)):  # fmt: skip
            backlog = np.searchsorted(times_in, grid_s, side="right") - np.searchsorted(times_out, grid_s, side="right")
            frames.append(_long(grid_s, BACKLOG_METRIC, p, backlog))
        notes = tuple(notes)
    else:
        notes = tuple(notes) + (f"per-partition backlog ({config.partitions} partitions × {len(grid_s)} samples) "
                                f"over METRICS_ROWS_MAX={METRICS_ROWS_MAX}; only the total is kept",)  # fmt: skip
    frames.append(_long(grid_s, BACKLOG_METRIC, None, total))
    frames.append(_long(grid_s, POSTED_METRIC, None, _counts_at(trace.done_s[applied], grid_s)))
    frames.append(_long(grid_s, DEAD_LETTERED_METRIC, None, _counts_at(trace.done_s[dead], grid_s)))
    frames.append(_long(grid_s, CONSUMERS_METRIC, None, _step_at(pool_timeline, grid_s)))
    metrics = pd.concat(frames, ignore_index=True)
    metrics = conform(metrics, METRICS_COLUMNS, "prediction metrics")

    k = int(np.argmax(total)) if len(total) else 0
    last_arrival_s = float(trace.arrival_s[-1]) if len(trace.arrival_s) else 0.0
    consumer_seconds, consumers_peak = _integral(pool_timeline, end_s)
    return Prediction(
        seed=seed,
        config=config,
        end_s=float(end_s),
        completed=bool(completed),
        arrivals_count=int(len(outcome)),
        # Accepted: not answered 429/503, even if a delayed enqueue had not landed when the run stopped.
        accepted_count=int(((outcome != Outcome.SHED) & (outcome != Outcome.UNAVAILABLE)).sum()),
        shed_count=int((outcome == Outcome.SHED).sum()),
        unavailable_count=int((outcome == Outcome.UNAVAILABLE).sum()),
        applied_count=int(applied.sum()),
        dead_lettered_count=int(dead.sum()),
        backlog_left_events=int((outcome == Outcome.PENDING).sum()),
        latency_ms_p50=p50,
        latency_ms_p95=p95,
        latency_ms_p99=p99,
        latency_ms_mean=mean,
        backlog_events_peak=float(total[k]) if len(total) else 0.0,
        backlog_events_peak_s=float(grid_s[k]) if len(grid_s) else 0.0,
        drain_s_after_last_arrival=drain_s_after(grid_s, total, last_arrival_s),
        drain_s_after_peak=drain_s_after_peak(grid_s, total),
        consumer_seconds=consumer_seconds,
        consumer_utilisation=busy_s / consumer_seconds if consumer_seconds > 0 else 0.0,
        consumers_peak=int(consumers_peak),
        metrics=metrics,
        trace=trace if keep_trace else None,
        notes=notes,
    )


def _long(grid_s: np.ndarray, metric: str, partition: int | None, values: np.ndarray) -> pd.DataFrame:
    n = len(grid_s)
    # Built from numpy buffers: a Python list of n partition numbers costs more than the simulation.
    partitions = pd.arrays.IntegerArray(np.full(n, partition or 0, dtype=np.int64), np.full(n, partition is None))
    return pd.DataFrame(
        {
            "time_s": grid_s,
            "metric": pd.Series(metric, index=pd.RangeIndex(n), dtype="string"),
            "partition": partitions,
            "value": np.asarray(values, dtype=float),
        }
    )
