"""The report's plots as PNG bytes: one timeline on a shared run-seconds axis, and the model against measurement.

Why one figure with shared x for the timeline: throughput, latency, backlog and
errors line up by construction, and the fault windows shaded in every panel show
cause and effect at a glance. Figures are built with matplotlib's object API on
the Agg canvas (no pyplot state, no display), so rendering is safe from any
thread and nothing leaks between reports.
"""

from __future__ import annotations

import io
import math
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402 - after matplotlib.use("Agg"), which must come first
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402 - after matplotlib.use("Agg"), which must come first
from matplotlib.figure import Figure  # noqa: E402 - after matplotlib.use("Agg"), which must come first
from matplotlib.ticker import FuncFormatter  # noqa: E402 - after matplotlib.use("Agg"), which must come first

from harness.history.schema import History  # noqa: E402 - after matplotlib.use("Agg"), which must come first
from harness.report.figures import fault_of_figure  # noqa: E402 - after matplotlib.use("Agg"), which must come first
from harness.report.series import (  # noqa: E402 - after matplotlib.use("Agg"), which must come first
    FaultWindow,
    backlog_series,
    backlog_total,
    bin_width_s,
    error_series,
    latency_series,
    throughput_series,
)

__all__ = ["timeline_png", "prediction_png", "PARTITION_LINES_MAX", "FAULT_LABELS_MAX", "DPI"]

PARTITION_LINES_MAX = 16  # more partitions than this: only the total is drawn
FAULT_LABELS_MAX = 12
LOG_SCALE_RATIO = 20.0  # latency on a log axis when p99 and p50 are this far apart
PHASES_MAX = (
    20  # phase boundaries marked; a run has five  # windows labelled in the top panel; the rest are shaded only
)
DPI = 100
_FAULT_COLOURS = ("tab:red", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _shade(ax, windows: Sequence[FaultWindow], end_s: float) -> None:
    for i, window in enumerate(windows):
        stop = window.stop_s if window.stop_s is not None else end_s
        ax.axvspan(
            window.start_s,
            max(stop, window.start_s + 0.05),
            color=_FAULT_COLOURS[i % len(_FAULT_COLOURS)],
            alpha=0.12 if window.applied else 0.05,
            linewidth=0,
        )


def _label_faults(ax, windows: Sequence[FaultWindow]) -> None:
    for i, window in enumerate(windows[:FAULT_LABELS_MAX]):
        text = window.description or f"fault {window.fault_id}"
        text = textwrap.shorten(text, 48, placeholder="…") + ("" if window.applied else " (not applied)")
        ax.annotate(
            f"F{window.fault_id if window.fault_id is not None else i}: {text}",
            xy=(window.start_s, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -4 - 11 * (i % 4)),
            textcoords="offset points",
            fontsize=7,
            va="top",
            color=_FAULT_COLOURS[i % len(_FAULT_COLOURS)],
        )


def _recovery_marks(ax, windows: Sequence[FaultWindow], recovery_s: Mapping[str, float | None]) -> None:
    """A dashed line where each fault's throughput recovered (stop + recovery seconds), when the
    graceful_degradation figures name the fault ("fault_<id>.recovery_s")."""
    by_id = {w.fault_id: w for w in windows if w.fault_id is not None and w.stop_s is not None}
    for name, seconds in recovery_s.items():
        fault_id = fault_of_figure(name)
        window = by_id.get(fault_id) if fault_id is not None else None
        if window is None:
            continue
        if seconds is None or not math.isfinite(seconds):
            ax.annotate(
                f"F{window.fault_id}: never recovered",
                xy=(window.stop_s, 0.5),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                color="black",
            )
            continue
        at = window.stop_s + seconds
        ax.axvline(at, color="black", linestyle="--", linewidth=0.9)
        ax.annotate(
            f"recovered +{seconds:.1f} s",
            xy=(at, 0.02),
            xycoords=("data", "axes fraction"),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize=7,
            rotation=90,
            va="bottom",
        )


def _mark_phases(axes, phases) -> None:
    """Dotted lines where a phase begins (warmup, baseline, fault, recovery, drain), named under the last panel."""
    for phase in phases[:PHASES_MAX]:
        for ax in axes:
            ax.axvline(phase.start_s, color="grey", linestyle=":", linewidth=0.8)
        axes[-1].annotate(
            phase.name,
            xy=(phase.start_s, 0.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -26),
            textcoords="offset points",
            fontsize=7,
            color="grey",
            annotation_clip=False,
        )


def _two_and_five(value: float, _pos=None) -> str:
    """Minor log ticks labelled only at 2x and 5x a power of ten: readable without clutter."""
    if value <= 0:
        return ""
    leading = round(value / 10 ** math.floor(math.log10(value) + 1e-9), 6)
    return f"{value:g}" if leading in (2.0, 5.0) else ""


def timeline_png(
    history: History,
    windows: Sequence[FaultWindow],
    recovery_s: Mapping[str, float | None],
    prediction_backlog: pd.DataFrame | None = None,
) -> bytes:
    """Four panels on one run-seconds axis: throughput, latency percentiles, backlog, errors by kind.

    prediction_backlog: time_s (run seconds), value of the model's total backlog, drawn dashed over
    the measured total.
    """
    width = bin_width_s(history)
    throughput = throughput_series(history, width)
    latency = latency_series(history, width)
    errors = error_series(history, width)
    backlog = backlog_series(history.metrics)
    total = backlog_total(history.metrics)
    end_s = float(throughput["time_s"].max() + width) if len(throughput) else 1.0

    fig = Figure(figsize=(13, 13))
    axes = fig.subplots(4, 1, sharex=True)
    ax_tp, ax_lat, ax_bl, ax_err = axes
    x = throughput["time_s"].to_numpy() + width / 2
    ax_tp.plot(x, throughput["offered"], label="offered (submit invokes/s)", linewidth=1.1)
    ax_tp.plot(x, throughput["accepted"], label="accepted (ok submits/s)", linewidth=1.1)
    if throughput["posted"].notna().any():
        ax_tp.plot(x, throughput["posted"], label="posted (applied/s)", linewidth=1.1)
    ax_tp.set_ylabel(f"events/s ({width:g} s bins)")
    ax_tp.set_title("throughput")
    ax_tp.legend(fontsize=8, loc="upper right")

    lx = latency["time_s"].to_numpy() + width / 2
    for name, style in (("latency_ms_p50", "-"), ("latency_ms_p95", "-"), ("latency_ms_p99", "-")):
        ax_lat.plot(lx, latency[name], style, label=name.replace("latency_ms_", ""), linewidth=1.0)
    high = latency["latency_ms_p99"].max()
    low = latency["latency_ms_p50"][latency["latency_ms_p50"] > 0].min()
    if pd.notna(high) and pd.notna(low) and high / low > LOG_SCALE_RATIO:
        ax_lat.set_yscale("log")  # a timeout next to a 5 ms median: both must stay readable
        ax_lat.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax_lat.yaxis.set_minor_formatter(FuncFormatter(_two_and_five))
        ax_lat.tick_params(axis="y", which="minor", labelsize=7)
    ax_lat.set_ylabel("ms (ok submits)")
    ax_lat.set_title("ingest latency percentiles, by completion time")
    ax_lat.legend(fontsize=8, loc="upper right")

    partitions = [c for c in backlog.columns if c != "time_s"]
    if 0 < len(partitions) <= PARTITION_LINES_MAX:
        for partition in partitions:
            ax_bl.plot(backlog["time_s"], backlog[partition], linewidth=0.8, label=f"p{partition}")
    if len(total):
        ax_bl.plot(total["time_s"], total["value"], color="black", linewidth=1.2, label="total")
    if prediction_backlog is not None and len(prediction_backlog):
        ax_bl.plot(
            prediction_backlog["time_s"],
            prediction_backlog["value"],
            "--",
            color="tab:red",
            linewidth=1.3,
            label="model prediction (total)",
        )
    ax_bl.set_ylabel("events")
    ax_bl.set_title("backlog per partition (ledger_backlog_events)")
    if ax_bl.get_legend_handles_labels()[0]:
        ax_bl.legend(fontsize=7, loc="upper right", ncol=2)

    kinds = [c for c in errors.columns if c != "time_s"]
    ex = errors["time_s"].to_numpy() + width / 2
    for kind in kinds:
        ax_err.plot(ex, errors[kind], label=kind, linewidth=1.0)
    ax_err.set_ylabel("completions/s")
    ax_err.set_title("errors by kind (fail and info completions)" + ("" if kinds else ": none"))
    if kinds:
        ax_err.legend(fontsize=8, loc="upper right")
    ax_err.set_xlabel("run time (s since t0)")

    for ax in axes:
        _shade(ax, windows, end_s)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, end_s)
    _mark_phases(axes, history.meta.phases)
    _label_faults(ax_tp, windows)
    _recovery_marks(ax_tp, windows, recovery_s)
    fig.tight_layout()
    return _png(fig)


def prediction_png(
    predicted_metrics: pd.DataFrame,
    measured_metrics: pd.DataFrame,
    latency_ms: Mapping[str, Mapping[str, float | None]],
) -> bytes:
    """The capacity model's backlog over the measured one, and predicted against measured end-to-end latency.

    Drawn by the capacity colleague's helper (plan_plots.plot_prediction_vs_measurement, which writes a
    file), so `ledgerchaos plan` and the report show the comparison the same way; the file goes to a
    private temporary folder and comes back as bytes. predicted_metrics must already be on run seconds.
    """
    from harness.report.plan_plots import plot_prediction_vs_measurement

    with tempfile.TemporaryDirectory(prefix="ledgerchaos-plot-") as folder:
        path = Path(folder) / "prediction.png"
        plot_prediction_vs_measurement(
            predicted_metrics,
            measured_metrics,
            latency_ms,
            path,
            title="capacity model (dashed) against the measured backlog",
        )
        return path.read_bytes()
