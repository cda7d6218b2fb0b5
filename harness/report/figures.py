"""The run's headline figures for summary.json: throughput, latency, errors, indeterminate ops, drain, backlog.

Why computed here and not taken from the checkers: the figures describe the run
whatever the verdicts (a run with no SLO thresholds still shows its p99), and an
incomplete run still has them. Recovery times are the one exception: they are
measured by the graceful_degradation checker and copied from its verdict, so the
report and the gate never disagree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from harness.history.schema import NEMESIS, History, OpF, OpType
from harness.report.series import POSTED_METRIC, backlog_total, client_completions, fault_windows

__all__ = ["load_span_s", "run_figures", "recovery_times_s", "fault_of_figure", "DEGRADATION_CHECKER"]

DEGRADATION_CHECKER = "graceful_degradation"
ERROR_KINDS_MAX = 50  # distinct error names kept in the summary; the rest are summed as "other"


def load_span_s(history: History) -> tuple[float, float]:
    """(start, end) of the load on the run clock: meta.load_start_s to the drain's start
    (else the end of the last phase, else the last client invoke)."""
    meta = history.meta
    start = float(meta.load_start_s)
    for phase in meta.phases:
        if phase.name == "drain":
            return start, float(phase.start_s)
    if meta.phases:
        return start, float(max(p.end_s for p in meta.phases))
    ops = history.ops
    client = ops.loc[
        ((ops["process"] != NEMESIS) & (ops["type"] == OpType.INVOKE.value)).to_numpy(dtype=bool, na_value=False)
    ]
    return start, float(client["time_s"].max()) if len(client) else start


_FAULT_FIGURE = re.compile(r"fault_(\d+)\b")


def fault_of_figure(name: str) -> int | None:
    """The fault id a degradation figure is about ("fault_3.recovery_s" -> 3), None for run-wide ones."""
    match = _FAULT_FIGURE.search(name)
    return int(match.group(1)) if match else None


def recovery_times_s(verdicts) -> dict:
    """The graceful_degradation verdict's recovery figures ({figure name: seconds, None when never})."""
    for verdict in verdicts:
        if verdict.name == DEGRADATION_CHECKER:
            return {k: (v if math.isfinite(v) else None) for k, v in verdict.figures.items() if "recover" in k}
    return {}


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _per_s(count: int, span_s: float) -> float | None:
    return count / span_s if span_s > 0 else None


def run_figures(history: History, verdicts=()) -> dict:
    """Every figure of summary.json's "figures" object (None where the history holds no data for it)."""
    start, end = load_span_s(history)
    span = max(0.0, end - start)
    ops = history.ops
    client = (ops["process"] != NEMESIS).to_numpy(dtype=bool, na_value=False)
    submit = (ops["f"] == OpF.SUBMIT.value).to_numpy(dtype=bool, na_value=False)
    kind = ops["type"].to_numpy(dtype=object, na_value=None)
    times = ops["time_s"].to_numpy(dtype="float64")
    inside = (times >= start) & (times <= end)
    invoked = client & submit & (kind == OpType.INVOKE.value)
    ok = client & submit & (kind == OpType.OK.value)

    done = client_completions(history)
    ok_latency = done.loc[
        ((done["type"] == OpType.OK.value) & (done["f"] == OpF.SUBMIT.value)).to_numpy(dtype=bool, na_value=False),
        "latency_ms",
    ].to_numpy(dtype="float64", na_value=np.nan)
    ok_latency = ok_latency[np.isfinite(ok_latency)]
    p50, p95, p99 = np.percentile(ok_latency, [50, 95, 99]) if len(ok_latency) else (None, None, None)

    invoke_ids = ops.loc[client & (kind == OpType.INVOKE.value), "op_id"].to_numpy()
    unanswered = int((~np.isin(invoke_ids, done["op_id"].to_numpy())).sum())

    backlog = backlog_total(history.metrics)
    if len(backlog):
        k = int(np.argmax(backlog["value"].to_numpy(dtype="float64")))
        backlog_peak, backlog_peak_s = float(backlog["value"].iloc[k]), float(backlog["time_s"].iloc[k])
    else:
        backlog_peak = backlog_peak_s = None

    meta = history.meta
    return {
        "load_span_s": span,
        "throughput_per_s_offered": _per_s(int((invoked & inside).sum()), span),
        "throughput_per_s_accepted": _per_s(int((ok & inside).sum()), span),
        "throughput_per_s_posted": _posted_per_s(history, start, end),
        "latency_ms_p50": _finite(p50),
        "latency_ms_p95": _finite(p95),
        "latency_ms_p99": _finite(p99),
        "submits_invoked": int(invoked.sum()),
        "submits_ok": int(ok.sum()),
        "ops_indeterminate": int((client & (kind == OpType.INFO.value)).sum()),
        "ops_unanswered": unanswered,
        "errors_by_kind": _errors_by_kind(done),
        "recovery_s": recovery_times_s(verdicts),
        "drain_s": _finite(meta.drain_duration_s),
        "drain_completed": meta.drain_completed,
        "backlog_left_events": meta.backlog_left,
        "backlog_events_peak": backlog_peak,
        "backlog_events_peak_s": backlog_peak_s,
        "events_posted": (
            int(history.observation.journal["event_id"].nunique()) if history.observation is not None else None
        ),
        "fault_windows": len(fault_windows(history)),
    }


def _errors_by_kind(done: pd.DataFrame) -> Mapping[str, int]:
    counts = done["kind"].dropna().value_counts()
    out = {str(k): int(v) for k, v in counts.iloc[:ERROR_KINDS_MAX].items()}
    if len(counts) > ERROR_KINDS_MAX:
        out["other"] = int(counts.iloc[ERROR_KINDS_MAX:].sum())
    return dict(sorted(out.items()))


def _posted_per_s(history: History, start: float, end: float) -> float | None:
    """Events applied per second during the load: from the journal's applied_s, else from the
    ledger_posted_events_total counter (resets clipped), else None."""
    span = end - start
    if span <= 0:
        return None
    observation = history.observation
    if observation is not None and len(observation.journal):
        applied = observation.journal["applied_s"].to_numpy(dtype="float64", na_value=np.nan)
        if np.isfinite(applied).any():
            return float(((applied >= start) & (applied <= end)).sum()) / span
    metrics = history.metrics
    names = metrics["metric"].astype("string")
    mask = ((names == POSTED_METRIC) | names.str.startswith(POSTED_METRIC + "{")).to_numpy(dtype=bool, na_value=False)
    rows = metrics.loc[mask]
    rows = rows.loc[((rows["time_s"] >= start) & (rows["time_s"] <= end)).to_numpy(dtype=bool, na_value=False)]
    if rows.empty:
        return None
    total = rows.groupby("time_s")["value"].sum().sort_index().to_numpy(dtype="float64")
    return float(np.clip(np.diff(total), 0.0, None).sum()) / span
