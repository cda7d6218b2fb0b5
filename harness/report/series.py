"""Time series for the report's plots: per-second throughput, latency percentiles, errors, backlog, fault windows.

Why a module apart from the plots: the series are plain frames computed from a
History (no drawing), so they can be tested exactly and reused by the summary
figures; the plots module only draws them. Times are run seconds (since t0),
the same axis for every series, so panels line up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.history.schema import NEMESIS, History, OpF, OpType

__all__ = [
    "FaultWindow",
    "fault_windows",
    "client_completions",
    "bin_width_s",
    "throughput_series",
    "latency_series",
    "error_series",
    "backlog_series",
    "backlog_total",
    "error_kind",
    "BINS_MAX",
    "FAULT_WINDOWS_MAX",
    "BACKLOG_METRIC",
    "BACKLOG_TOTAL_METRIC",
    "POSTED_METRIC",
]

BINS_MAX = 4000  # a longer run gets wider bins; a plot has no use for more points than pixels
FAULT_WINDOWS_MAX = 500  # windows kept from a history; a schedule with more is summarised by count
BACKLOG_METRIC = "ledger_backlog_events"
BACKLOG_TOTAL_METRIC = "ledger_backlog_events_total"
POSTED_METRIC = "ledger_posted_events_total"


@dataclass(frozen=True)
class FaultWindow:
    """One fault from its fault_start to its fault_stop (stop_s None: never stopped in the history)."""

    fault_id: int | None
    start_s: float
    stop_s: float | None
    description: str
    applied: bool = True  # False when the fault_start op was info (the fault could not be applied)

    def to_json(self) -> dict:
        return {
            "fault_id": self.fault_id,
            "start_s": self.start_s,
            "stop_s": self.stop_s,
            "description": self.description,
            "applied": self.applied,
        }


def fault_windows(history: History) -> tuple[FaultWindow, ...]:
    """Nemesis fault_start / fault_stop ops paired by fault_id, in start order (at most FAULT_WINDOWS_MAX).

    A start without a stop stays open (stop_s None); a stop without a start
    (e.g. the final heal-all) is not a window.
    """
    ops = history.ops
    nemesis = ops.loc[(ops["process"] == NEMESIS).to_numpy(dtype=bool, na_value=False)]
    if nemesis.empty:
        return ()
    open_: dict = {}
    windows = []
    for row in nemesis.sort_values(["time_s", "index"], kind="stable").itertuples(index=False):
        fid = None if pd.isna(row.fault_id) else int(row.fault_id)
        text = "" if pd.isna(row.fault) else str(row.fault)
        if row.f == OpF.FAULT_START.value:
            if fid in open_:  # a second start of an open id: close the first where the second begins
                windows.append(_closed(open_.pop(fid), float(row.time_s)))
            open_[fid] = FaultWindow(fid, float(row.time_s), None, text, row.type == OpType.OK.value)
        elif row.f == OpF.FAULT_STOP.value and fid in open_:
            windows.append(_closed(open_.pop(fid), float(row.time_s)))
    windows.extend(open_.values())
    windows.sort(key=lambda w: (w.start_s, -1 if w.fault_id is None else w.fault_id))
    return tuple(windows[:FAULT_WINDOWS_MAX])


def _closed(window: FaultWindow, stop_s: float) -> FaultWindow:
    return FaultWindow(window.fault_id, window.start_s, stop_s, window.description, window.applied)


def error_kind(error: pd.Series, status_code: pd.Series) -> pd.Series:
    """The error name of each completion: its `error`, else http_<status>, else "unknown"."""
    status = status_code.astype("Int64").astype("string")
    kind = error.astype("string").fillna("http_" + status).fillna("unknown")
    return kind.astype(object)


def client_completions(history: History) -> pd.DataFrame:
    """Client completions (ok / fail / info) with f, time_s, latency_ms, and kind (error name, None when ok)."""
    ops = history.ops
    mask = ((ops["process"] != NEMESIS) & (ops["type"] != OpType.INVOKE.value)).to_numpy(dtype=bool, na_value=False)
    done = ops.loc[mask, ["time_s", "f", "type", "latency_ms", "error", "status_code", "event_id", "op_id"]]
    kind = error_kind(done["error"], done["status_code"])
    kind[(done["type"] == OpType.OK.value).to_numpy(dtype=bool, na_value=False)] = None
    return done.assign(kind=kind.to_numpy()).reset_index(drop=True)


def _time_span(history: History) -> tuple[float, float]:
    ends = [float(history.ops["time_s"].max())] if len(history.ops) else []
    if len(history.metrics):
        ends.append(float(history.metrics["time_s"].max()))
    end = max([e for e in ends if math.isfinite(e)] or [1.0])
    return 0.0, max(end, 1.0)


def bin_width_s(history: History, bin_s: float = 1.0) -> float:
    """bin_s, widened (doubling) until the run fits in BINS_MAX bins."""
    _start, end = _time_span(history)
    width = bin_s
    while end / width > BINS_MAX:
        width *= 2
    return width


def _edges(history: History, width_s: float) -> np.ndarray:
    _start, end = _time_span(history)
    return np.arange(0.0, end + width_s, width_s)


def _rate(times_s: np.ndarray, edges: np.ndarray, width_s: float) -> np.ndarray:
    counts, _ = np.histogram(times_s[np.isfinite(times_s)], bins=edges)
    return counts / width_s


def throughput_series(history: History, width_s: float) -> pd.DataFrame:
    """time_s (bin start), offered (submit invokes/s), accepted (ok submits/s), posted (events applied/s).

    posted comes from the journal's applied_s when the ledger was observed, else from
    the rate of ledger_posted_events_total (counter resets after a restart clipped to 0),
    else NaN.
    """
    edges = _edges(history, width_s)
    ops = history.ops
    submit = (ops["f"] == OpF.SUBMIT.value).to_numpy(dtype=bool, na_value=False)
    invoke = (ops["type"] == OpType.INVOKE.value).to_numpy(dtype=bool, na_value=False)
    ok = (ops["type"] == OpType.OK.value).to_numpy(dtype=bool, na_value=False)
    times = ops["time_s"].to_numpy(dtype="float64")
    out = pd.DataFrame(
        {
            "time_s": edges[:-1],
            "offered": _rate(times[submit & invoke], edges, width_s),
            "accepted": _rate(times[submit & ok], edges, width_s),
        }
    )
    out["posted"] = _posted_rate(history, edges, width_s)
    return out


def _posted_rate(history: History, edges: np.ndarray, width_s: float) -> np.ndarray:
    observation = history.observation
    if observation is not None and len(observation.journal):
        applied = observation.journal["applied_s"].to_numpy(dtype="float64", na_value=np.nan)
        if np.isfinite(applied).any():
            return _rate(applied, edges, width_s)
    counter = _counter_total(history.metrics, POSTED_METRIC)
    if counter.empty:
        return np.full(len(edges) - 1, np.nan)
    increments = np.clip(np.diff(counter["value"].to_numpy(dtype="float64"), prepend=np.nan), 0.0, None)
    sums, _ = np.histogram(counter["time_s"].to_numpy(dtype="float64")[1:], bins=edges, weights=increments[1:])
    return sums / width_s


def _counter_total(metrics: pd.DataFrame, name: str) -> pd.DataFrame:
    """time_s, value: the sum over every labelled series of a counter, per sample time."""
    names = metrics["metric"].astype("string")
    mask = ((names == name) | names.str.startswith(name + "{")).to_numpy(dtype=bool, na_value=False)
    rows = metrics.loc[mask, ["time_s", "value"]]
    if rows.empty:
        return rows
    return rows.groupby("time_s", as_index=False)["value"].sum().sort_values("time_s")


def latency_series(history: History, width_s: float) -> pd.DataFrame:
    """time_s (bin start), count, latency_ms_p50 / _p95 / _p99 of ok submits, binned by completion time."""
    done = client_completions(history)
    ok = done.loc[
        ((done["type"] == OpType.OK.value) & (done["f"] == OpF.SUBMIT.value)).to_numpy(dtype=bool, na_value=False)
    ]
    edges = _edges(history, width_s)
    frame = pd.DataFrame({"time_s": edges[:-1]})
    latency = ok["latency_ms"].to_numpy(dtype="float64", na_value=np.nan)
    times = ok["time_s"].to_numpy(dtype="float64")
    keep = np.isfinite(latency)
    if not keep.any():
        for name in ("count", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99"):
            frame[name] = 0 if name == "count" else np.nan
        return frame
    bins = np.clip(np.floor(times[keep] / width_s).astype(np.int64), 0, len(edges) - 2)
    grouped = pd.Series(latency[keep]).groupby(bins)
    quantiles = grouped.quantile([0.5, 0.95, 0.99]).unstack()
    frame["count"] = grouped.size().reindex(range(len(frame)), fill_value=0).to_numpy()
    for q, name in ((0.5, "latency_ms_p50"), (0.95, "latency_ms_p95"), (0.99, "latency_ms_p99")):
        frame[name] = quantiles[q].reindex(range(len(frame))).to_numpy(dtype="float64")
    return frame


def error_series(history: History, width_s: float, kinds_max: int = 8) -> pd.DataFrame:
    """time_s (bin start) and one column per error kind (fail / info completions per s).

    The kinds_max most frequent kinds get a column each; the rest are summed as "other".
    """
    done = client_completions(history)
    bad = done.loc[done["kind"].notna().to_numpy()]
    edges = _edges(history, width_s)
    frame = pd.DataFrame({"time_s": edges[:-1]})
    if bad.empty:
        return frame
    ranked = bad["kind"].value_counts()
    top = list(ranked.index[:kinds_max])
    kinds = bad["kind"].where(bad["kind"].isin(top), "other")
    times = bad["time_s"].to_numpy(dtype="float64")
    for kind in top + (["other"] if len(ranked) > kinds_max else []):
        frame[str(kind)] = _rate(times[(kinds == kind).to_numpy()], edges, width_s)
    return frame


def backlog_series(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per-partition backlog samples, wide: time_s and one column per partition (ledger_backlog_events)."""
    rows = metrics.loc[
        ((metrics["metric"] == BACKLOG_METRIC) & metrics["partition"].notna()).to_numpy(dtype=bool, na_value=False)
    ]
    if rows.empty:
        return pd.DataFrame({"time_s": pd.Series(dtype="float64")})
    wide = rows.pivot_table(index="time_s", columns="partition", values="value", aggfunc="last").sort_index()
    wide.columns = [int(c) for c in wide.columns]
    return wide.reset_index()


def backlog_total(metrics: pd.DataFrame) -> pd.DataFrame:
    """time_s, value of the total backlog: ledger_backlog_events_total, else the partition-less
    ledger_backlog_events rows (the capacity model's form), else the sum over partitions."""
    names = metrics["metric"]
    for mask in (
        (names == BACKLOG_TOTAL_METRIC),
        (names == BACKLOG_METRIC) & metrics["partition"].isna(),
    ):
        rows = metrics.loc[mask.to_numpy(dtype=bool, na_value=False), ["time_s", "value"]]
        if len(rows):
            return rows.sort_values("time_s", kind="stable").reset_index(drop=True)
    rows = metrics.loc[(names == BACKLOG_METRIC).to_numpy(dtype=bool, na_value=False)]
    return rows.groupby("time_s", as_index=False)["value"].sum().sort_values("time_s").reset_index(drop=True)
