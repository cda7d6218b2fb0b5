"""Plots for the capacity model: plans' SLO attainment against cost, their timelines, prediction over measurement.

Why plain frames in, a PNG path out: the report and `ledgerchaos plan` both
draw these without importing the model; matplotlib runs on the Agg backend
(no display, no GUI toolkit) and every figure is closed after saving.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after matplotlib.use("Agg"), which must come first
import numpy as np  # noqa: E402 - after matplotlib.use("Agg"), which must come first
import pandas as pd  # noqa: E402 - after matplotlib.use("Agg"), which must come first

__all__ = ["plot_plan_comparison", "plot_plan_timelines", "plot_prediction_vs_measurement"]

_BACKLOG = "ledger_backlog_events"
_CONSUMERS = "ledger_consumers_provisioned"


def _save(fig, path: Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _err(frame: pd.DataFrame, name: str) -> np.ndarray:
    return np.nan_to_num(frame[f"{name}_ci_half"].to_numpy(dtype=float), nan=0.0)


def plot_plan_comparison(table: pd.DataFrame, path: Path, title: str = "plans",
                         latency_ms_p99_max: float | None = None, attainment_min: float | None = None) -> Path:  # fmt: skip
    """Two panels against mean consumer-seconds (x, with 95% CI): SLO attainment (Wilson CI) and p99 latency.

    `table` is PlanComparison.table(): one row per plan with *_mean / *_ci_half
    columns, slo_attainment(_ci_low/_ci_high), meets_slo, cheapest. The SLO's
    p99 bound and attainment_min, when given, are drawn as dashed lines.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    x = table["consumer_seconds_mean"].to_numpy(dtype=float)
    xerr = _err(table, "consumer_seconds")
    y = table["slo_attainment"].to_numpy(dtype=float)
    low, high = table["slo_attainment_ci_low"].to_numpy(float), table["slo_attainment_ci_high"].to_numpy(float)
    yerr = np.clip(np.vstack([y - low, high - y]), 0.0, None)  # rounding can put y a hair outside its interval
    colours = [
        "tab:green" if c else ("tab:blue" if m else "tab:grey") for c, m in zip(table["cheapest"], table["meets_slo"])
    ]
    for i, name in enumerate(table["plan"]):
        ax1.errorbar(x[i], y[i], xerr=xerr[i], yerr=yerr[:, i : i + 1], fmt="o", color=colours[i], capsize=3)
        ax1.annotate(str(name), (x[i], y[i]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        p99 = table["latency_ms_p99_mean"].iloc[i]
        ax2.errorbar(
            x[i], p99, xerr=xerr[i], yerr=_err(table, "latency_ms_p99")[i], fmt="o", color=colours[i], capsize=3
        )
        ax2.annotate(str(name), (x[i], p99), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if attainment_min is not None:
        ax1.axhline(attainment_min, linestyle="--", color="tab:red", linewidth=1, label="attainment_min")
        ax1.legend(fontsize=8, loc="center right")
    if latency_ms_p99_max is not None:
        ax2.axhline(latency_ms_p99_max, linestyle="--", color="tab:red", linewidth=1, label="SLO p99")
        ax2.legend(fontsize=8)
    ax1.set_xlabel("cost: consumer-seconds (mean, 95% CI)")
    ax1.set_ylabel("SLO attainment (share of replications, 95% Wilson CI)")
    ax1.set_ylim(-0.05, 1.05)
    ax1.set_title(f"{title}: SLO attainment vs cost (green: cheapest meeting SLO)")
    ax2.set_xlabel("cost: consumer-seconds")
    ax2.set_ylabel("end-to-end latency p99 (ms, mean, 95% CI)")
    ax2.set_yscale("log")
    ax2.set_title("p99 latency vs cost")
    return _save(fig, path)


def plot_plan_timelines(timelines: pd.DataFrame, path: Path, title: str = "plans") -> Path:
    """Total backlog and provisioned consumers over time, one line per plan (first replication).

    `timelines`: columns plan, time_s, metric (ledger_backlog_events / ledger_consumers_provisioned), value.
    """
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for plan, frame in timelines.groupby("plan", sort=False):
        backlog = frame[frame["metric"] == _BACKLOG]
        consumers = frame[frame["metric"] == _CONSUMERS]
        ax1.plot(backlog["time_s"], backlog["value"], label=str(plan), linewidth=1)
        ax2.step(consumers["time_s"], consumers["value"], where="post", label=str(plan), linewidth=1)
    ax1.set_ylabel("backlog (events)")
    ax1.set_title(f"{title}: backlog and consumers over time (seed of the first replication)")
    ax1.legend(fontsize=8)
    ax2.set_ylabel("consumers provisioned")
    ax2.set_xlabel("time (s)")
    return _save(fig, path)


def plot_prediction_vs_measurement(
    predicted: pd.DataFrame,
    measured: pd.DataFrame,
    latency_ms: Mapping[str, Mapping[str, float | None]],
    path: Path,
    title: str = "model against measurement",
) -> Path:
    """The model's total backlog laid over the measured one, and predicted vs measured latency percentiles.

    predicted / measured: metrics frames (history METRICS_COLUMNS); the total
    backlog is the ledger_backlog_events rows without a partition (or, when a
    history only has per-partition rows, their sum). latency_ms: {"p50":
    {"predicted": .., "measured": ..}, ...}.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    for label, frame, style in (("measured", measured, "-"), ("predicted", predicted, "--")):
        total = total_backlog(frame)
        ax1.plot(total["time_s"], total["value"], style, label=label, linewidth=1.2)
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("backlog (events)")
    ax1.set_title(title)
    ax1.legend()
    names = list(latency_ms)
    idx = np.arange(len(names))
    for offset, which in ((-0.2, "measured"), (0.2, "predicted")):
        values = [latency_ms[n].get(which) or np.nan for n in names]
        ax2.bar(idx + offset, values, width=0.4, label=which)
    ax2.set_xticks(idx, names)
    ax2.set_ylabel("end-to-end latency (ms)")
    ax2.legend(fontsize=8)
    return _save(fig, path)


def total_backlog(metrics: pd.DataFrame) -> pd.DataFrame:
    """time_s, value of the total backlog from a metrics frame."""
    rows = metrics[metrics["metric"] == _BACKLOG]
    totals = rows[rows["partition"].isna()]
    if len(totals):
        return totals[["time_s", "value"]].sort_values("time_s").reset_index(drop=True)
    return rows.groupby("time_s", as_index=False)["value"].sum()
