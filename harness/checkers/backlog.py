"""The backlog checker: the queue between ingest and the ledger stays under its stated bound.

Why a checker of its own: backpressure is the promise that the backlog is
bounded (ingest answers 429 past the high-water mark). A system without it
stays correct for a while and then falls over from memory; no ledger
invariant sees that, the backlog does. The measure is the sampled total
backlog (`ledger_backlog_events_total`, else the sum of the per-partition
`ledger_backlog_events` samples at each time), read by the harness directly
from the broker. A bound left at None is not judged (the peak is still
reported); no samples at all is UNKNOWN.
"""

from __future__ import annotations

from typing import cast

import pandas as pd

from harness.checkers.common import not_judged, unknown
from harness.checkers.config import CheckConfig
from harness.checkers.verdict import Evidence, Validity, Verdict
from harness.history.schema import History

__all__ = ["backlog_bounded", "backlog_series"]

NAME = "backlog_bounded"
TOTAL = "ledger_backlog_events_total"
PER_PARTITION = "ledger_backlog_events"
EVIDENCE_SAMPLES = 8


def backlog_series(history: History) -> pd.Series:
    """Total backlog by sample time (index time_s), from the total metric or the per-partition sum.

    Per-partition samples are summed per sampling round (the `round` column), placed at the round's
    last sample; without rounds, each sample time gets the sum of every partition's latest value
    (samples of one round taken milliseconds apart must not be judged partition by partition).
    """
    metrics = history.metrics
    if metrics is None or len(metrics) == 0:
        return pd.Series(dtype="float64")
    names = metrics["metric"].astype("string")
    total = metrics.loc[(names == TOTAL).fillna(False).to_numpy()]
    if len(total):
        return total.groupby("time_s")["value"].sum().sort_index()
    parts = metrics.loc[(names == PER_PARTITION).fillna(False).to_numpy()]
    if not len(parts):
        return pd.Series(dtype="float64")
    if "round" in parts.columns and parts["round"].notna().all():
        rounds = parts.groupby("round").agg(time_s=("time_s", "max"), value=("value", "sum"))
        return rounds.groupby("time_s")["value"].max().sort_index()
    # No rounds: the latest value of each partition, carried until its next sample.
    wide = parts.pivot_table(index="time_s", columns="partition", values="value", aggfunc="last", dropna=False)
    return wide.sort_index().ffill().sum(axis=1, min_count=1).dropna()


def backlog_bounded(history: History, config: CheckConfig, facts=None) -> Verdict:
    series = backlog_series(history)
    bound = config.backlog_events_max
    counts = {"samples": int(len(series))}
    if len(series) == 0:
        if bound is None:
            return not_judged(NAME, "no backlog_events_max set (and no backlog samples)", counts)
        return unknown(NAME, "cannot judge: no backlog samples in the metrics (ledger_backlog_events)", counts)
    peak_time_s = float(cast(float, series.idxmax()))  # pandas-stubs say Hashable; this index is seconds
    peak = float(series.max())
    figures = {"backlog_events_peak": peak, "backlog_events_peak_time_s": peak_time_s}
    if bound is None:
        return not_judged(NAME, f"no backlog_events_max set (peak {peak:.0f} events)", counts, figures)
    over = series[series > bound]
    counts["samples_over_bound"] = int(len(over))
    figures["backlog_events_max"] = float(bound)
    if len(over) == 0:
        return Verdict(
            NAME,
            Validity.VALID,
            f"holds: peak {peak:.0f} events <= {bound:g} over {len(series)} samples",
            counts,
            figures,
            (),
        )
    first_s, last_s = float(over.index.min()), float(over.index.max())
    figures["over_bound_s"] = last_s - first_s
    samples = tuple(
        {"time_s": round(float(t), 3), "backlog_events": float(v)}
        for t, v in zip(over.index.to_numpy()[:EVIDENCE_SAMPLES], over.to_numpy()[:EVIDENCE_SAMPLES])
    )
    evidence = (
        Evidence(
            None,
            f"backlog {peak:.0f} events at {peak_time_s:.2f} s, above the bound {bound:g} "
            f"from {first_s:.2f} s to {last_s:.2f} s (no backpressure?)",
            samples,
        ),
    )
    return Verdict(
        NAME,
        Validity.INVALID,
        f"violated: the backlog passed {bound:g} events in {len(over)} of {len(series)} samples "
        f"(peak {peak:.0f} at {peak_time_s:.2f} s)",
        counts,
        figures,
        evidence,
    )
