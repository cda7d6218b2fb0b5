"""Read the live run's figures from a History the way the model states them: arrivals, apply times, latency, backlog.

Why its own module: calibration fits on these figures and prediction_error
compares against them; both must read a history identically. Pure: a History in,
numpy arrays and floats out.

Apply times, best first (seconds on the run's clock):
- the journal's `committed_s` column: when the event's transaction committed;
- the journal's `applied_s` column: the reference system's `applied_at`, which
  is PostgreSQL's now(), the *start* of the applying transaction; latencies to
  it leave out the batch's own time, so the model is compared on the same
  basis (EventTrace.latency_s_to("start"));
- otherwise each event's commit time is estimated from its `seq` rank and the
  `ledger_posted_events_total` samples (the k-th applied event was applied
  when the counter passed k, interpolated between samples: good to about one
  sample interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.capacity.prediction import BACKLOG_METRIC, POSTED_METRIC, drain_s_after, drain_s_after_peak
from harness.history.schema import History

__all__ = ["MeasuredRun", "measure", "offered_arrivals_s"]


@dataclass(frozen=True)
class MeasuredRun:
    """A run's figures, comparable to a Prediction's."""

    accepted_invoke_s: np.ndarray  # sorted invoke times of accepted (202) first submissions
    latency_s: np.ndarray  # end-to-end: accepted invoke → applied, for events in the journal
    apply_source: str  # "committed_s", "applied_s" or "posted_counter"
    backlog_time_s: np.ndarray
    backlog_total: np.ndarray
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    backlog_events_peak: float
    drain_s_after_last_arrival: float | None
    drain_s_after_peak: float | None

    @property
    def latency_basis(self) -> str:
        """ "start" when latencies end at the applying transaction's start (applied_s), else "commit"."""
        return "start" if self.apply_source == "applied_s" else "commit"


def _submits(ops: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    submits = ops[ops["f"] == "submit"]
    invokes = submits[submits["type"] == "invoke"]
    accepted = submits[(submits["type"] == "ok") & (submits["status_code"] == 202)]
    return invokes, accepted


def offered_arrivals_s(history: History) -> np.ndarray:
    """Send times of every first submission of a valid body (what the model's arrivals stand for).

    Client retries (attempt > 1), deliberate duplicates and bad bodies are not
    new postings, so they are left out.
    """
    invokes, _ = _submits(history.ops)
    keep = pd.Series(True, index=invokes.index)
    if "attempt" in invokes:
        keep &= invokes["attempt"].fillna(1) <= 1
    if "duplicate" in invokes:
        keep &= ~invokes["duplicate"].fillna(False).astype(bool)
    if "valid_body" in invokes:
        keep &= invokes["valid_body"].fillna(True).astype(bool)
    return np.sort(invokes.loc[keep, "time_s"].to_numpy(dtype=float))


def _accepted_invokes(history: History) -> pd.Series:
    """event_id → earliest invoke time of a submission answered 202."""
    invokes, accepted = _submits(history.ops)
    invoke_time = invokes.set_index("op_id")["time_s"]
    times = accepted["op_id"].map(invoke_time)
    # A completion without its invoke (a trimmed history): invoke = completion − latency.
    fallback = accepted["time_s"] - accepted["latency_ms"].astype(float) / 1000.0
    times = times.fillna(fallback).astype(float)
    frame = pd.DataFrame({"event_id": accepted["event_id"].astype(str).to_numpy(), "invoke_s": times.to_numpy()})
    return frame.groupby("event_id")["invoke_s"].min()


def _apply_times(history: History) -> tuple[pd.Series, str]:
    if history.observation is None:
        raise ValueError("the history has no observation (journal): apply times, hence latencies, are unknown")
    journal = history.observation.journal
    for column in ("committed_s", "applied_s"):
        if column in journal.columns and len(journal) and journal[column].notna().all():
            return pd.Series(journal[column].to_numpy(float), index=journal["event_id"].astype(str)), column
    metrics = history.metrics
    posted = metrics[(metrics["metric"] == POSTED_METRIC) & metrics["partition"].isna()].sort_values("time_s")
    if len(posted) < 2:
        raise ValueError(
            "the journal has no committed_s or applied_s column and the metrics have no "
            "ledger_posted_events_total samples: "
            "apply times cannot be known; record one of them"
        )
    ordered = journal.sort_values("seq")
    counts = posted["value"].to_numpy(float) - float(posted["value"].iloc[0])
    times = posted["time_s"].to_numpy(float)
    # np.interp needs increasing x: a counter is non-decreasing, ties are harmless here.
    rank = np.arange(1, len(ordered) + 1, dtype=float)
    applied = np.interp(rank, np.maximum.accumulate(counts), times)
    return pd.Series(applied, index=ordered["event_id"].astype(str).to_numpy()), "posted_counter"


def _backlog_total(history: History) -> tuple[np.ndarray, np.ndarray]:
    metrics = history.metrics
    rows = metrics[metrics["metric"] == BACKLOG_METRIC]
    totals = rows[rows["partition"].isna()]
    if not len(totals):
        totals = rows.groupby("time_s", as_index=False).agg(value=("value", "sum"))
    totals = totals.sort_values("time_s")
    return totals["time_s"].to_numpy(float), totals["value"].to_numpy(float)


def _percentiles_ms(latency_s: np.ndarray) -> tuple[float, float, float]:
    if len(latency_s) == 0:
        return math.nan, math.nan, math.nan
    p50, p95, p99 = np.percentile(latency_s * 1000.0, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def measure(history: History) -> MeasuredRun:
    """The measured figures of a stored run."""
    invoke = _accepted_invokes(history)
    applied, source = _apply_times(history)
    both = invoke.index.intersection(applied.index)
    latency_s = (applied.loc[both] - invoke.loc[both]).to_numpy(float)
    latency_s = np.sort(latency_s)
    time_s, total = _backlog_total(history)
    last_s = float(invoke.max()) if len(invoke) else 0.0
    p50, p95, p99 = _percentiles_ms(latency_s)
    return MeasuredRun(
        accepted_invoke_s=np.sort(invoke.to_numpy(float)),
        latency_s=latency_s,
        apply_source=source,
        backlog_time_s=time_s,
        backlog_total=total,
        latency_ms_p50=p50,
        latency_ms_p95=p95,
        latency_ms_p99=p99,
        backlog_events_peak=float(total.max()) if len(total) else 0.0,
        drain_s_after_last_arrival=drain_s_after(time_s, total, last_s) if len(total) else None,
        drain_s_after_peak=drain_s_after_peak(time_s, total) if len(total) else None,
    )
