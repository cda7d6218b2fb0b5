"""The SLO checker: latency percentiles of ok submits and their throughput, against the configured bounds.

Why only ok submits: a refusal is fast by design and would flatter the
percentiles; the SLO is about postings accepted. Percentiles are numpy's
linear interpolation over every ok submit's latency_ms. Throughput is ok
submits divided by the load span: first client invoke to last client
completion. Bounds left at None are not judged (their figures are still
reported); with no bound set at all the verdict is VALID and says that nothing
was judged.
"""

from __future__ import annotations

import numpy as np

from harness.checkers.common import needs_ops, not_judged, unknown
from harness.checkers.config import CheckConfig
from harness.checkers.facts import DONE_OK, Facts
from harness.checkers.verdict import Evidence, Validity, Verdict
from harness.history.schema import History

__all__ = ["slo"]

NAME = "slo"
_PERCENTILES = (("latency_ms_p50", 50.0), ("latency_ms_p95", 95.0), ("latency_ms_p99", 99.0))


def slo(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Latency percentiles and throughput of ok submits against the configured bounds (see module doc)."""
    facts = facts if facts is not None else Facts(history)
    no_ops = needs_ops(NAME, facts)
    if no_ops:
        return no_ops
    attempts = facts.attempts
    submits = attempts.loc[attempts["submit"].to_numpy()]
    ok = submits["done"].to_numpy() == DONE_OK
    latency = submits["latency_ms"].to_numpy()[ok]
    latency = latency[~np.isnan(latency)]
    counts = {"ok_submits": int(ok.sum()), "submits": len(submits)}
    figures: dict = {}
    if len(latency):
        for figure, q in _PERCENTILES:
            figures[figure] = float(np.percentile(latency, q))
        figures["latency_ms_max"] = float(latency.max())
    span_s = 0.0
    if len(attempts):
        finish = np.nanmax(attempts["done_s"].to_numpy()) if (attempts["done"].to_numpy() > 0).any() else np.nan
        last = np.nanmax([finish, attempts["invoke_s"].max()])
        span_s = float(last - attempts["invoke_s"].min())
    if span_s > 0:
        figures["throughput_per_s"] = counts["ok_submits"] / span_s
        figures["load_span_s"] = span_s

    bounds = [(f"{figure}_max", figure) for figure, _ in _PERCENTILES]
    breaches: list[str] = []
    lacking: list[str] = []
    judged: list[str] = []
    for bound_name, figure in bounds:
        bound = getattr(config, bound_name)
        if bound is None:
            continue
        judged.append(bound_name)
        if figure not in figures:
            lacking.append(f"{figure}: no ok submit with a latency")
        elif figures[figure] > bound:
            breaches.append(f"{figure} = {figures[figure]:.1f} ms > {bound:g} ms")
    if config.throughput_per_s_min is not None:
        judged.append("throughput_per_s_min")
        if "throughput_per_s" not in figures:
            lacking.append("throughput_per_s: the history has no load span")
        elif figures["throughput_per_s"] < config.throughput_per_s_min:
            breaches.append(f"throughput_per_s = {figures['throughput_per_s']:.1f} < {config.throughput_per_s_min:g}")
    if breaches:
        return Verdict(
            NAME,
            Validity.INVALID,
            "violated: " + "; ".join(breaches),
            counts,
            figures,
            tuple(Evidence(None, b) for b in breaches),
        )
    if lacking:
        return unknown(NAME, "cannot judge: " + "; ".join(lacking), counts, figures)
    if not judged:
        return not_judged(NAME, "no SLO bound is set (figures reported only)", counts, figures)
    shown = ", ".join(f"{k}={v:.1f}" for k, v in figures.items() if k.startswith(("latency_ms_p", "throughput")))
    return Verdict(NAME, Validity.VALID, f"holds: {', '.join(judged)} met ({shown})", counts, figures, ())
