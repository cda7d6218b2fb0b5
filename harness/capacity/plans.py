"""Compare capacity plans under one load: SLO attainment against cost, over seeded replications.

Why replications with common random numbers: plan A beating plan B on one
seed may be luck. Every plan sees the same seeds (seed, seed+1, ...), hence
the same arrivals, so differences between plans are the plans' doing; the
spread over seeds gives the 95% confidence intervals. Pure: no I/O here
(plans_run.py writes the files).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.capacity.config import ModelConfig, NoScaling, PredictiveScaling, ReactiveScaling
from harness.capacity.model import simulate
from harness.capacity.prediction import BACKLOG_METRIC, CONSUMERS_METRIC, Prediction
from harness.capacity.theory import t_quantile_975
from harness.faults.schedule import FaultSchedule
from harness.load.profile import LoadProfile

__all__ = ["Slo", "Plan", "PlanStudy", "PlanResult", "PlanComparison", "compare_plans", "wilson_interval",
           "mean_ci", "REPLICATIONS_MAX"]  # fmt: skip

REPLICATIONS_MAX = 1000


@dataclass(frozen=True)
class Slo:
    """What a plan must achieve in a replication; None means "not judged"."""

    latency_ms_p99_max: float | None = None
    latency_ms_p95_max: float | None = None
    shed_share_max: float | None = None
    dead_lettered_share_max: float | None = None
    drain_s_max: float | None = None  # after the last arrival
    attainment_min: float = 0.9  # share of replications that must meet the SLO

    def __post_init__(self) -> None:
        for name in ("latency_ms_p99_max", "latency_ms_p95_max", "shed_share_max", "dead_lettered_share_max",
                     "drain_s_max"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f'"{name}" must be a number >= 0 or null, got {value!r}')
        if not 0.0 < self.attainment_min <= 1.0:
            raise ValueError(f'"attainment_min" must be within (0, 1], got {self.attainment_min!r}')
        if all(getattr(self, n) is None for n in ("latency_ms_p99_max", "latency_ms_p95_max", "shed_share_max",
                                                  "dead_lettered_share_max", "drain_s_max")):  # fmt: skip
            raise ValueError('"slo" judges nothing; set at least one of latency_ms_p99_max, latency_ms_p95_max, '
                             "shed_share_max, dead_lettered_share_max, drain_s_max")  # fmt: skip

    def misses(self, p: Prediction) -> list[str]:
        """The SLO terms this prediction misses (empty: met). NaN latency (nothing applied) misses."""
        out = []
        if self.latency_ms_p99_max is not None and not p.latency_ms_p99 <= self.latency_ms_p99_max:
            out.append(f"latency_ms_p99 {p.latency_ms_p99:.0f} > {self.latency_ms_p99_max:g}")
        if self.latency_ms_p95_max is not None and not p.latency_ms_p95 <= self.latency_ms_p95_max:
            out.append(f"latency_ms_p95 {p.latency_ms_p95:.0f} > {self.latency_ms_p95_max:g}")
        if self.shed_share_max is not None and not p.shed_share <= self.shed_share_max:
            out.append(f"shed_share {p.shed_share:.4f} > {self.shed_share_max:g}")
        if self.dead_lettered_share_max is not None:
            share = p.dead_lettered_count / p.arrivals_count if p.arrivals_count else 0.0
            if not share <= self.dead_lettered_share_max:
                out.append(f"dead_lettered_share {share:.4f} > {self.dead_lettered_share_max:g}")
        if self.drain_s_max is not None:
            drain = p.drain_s_after_last_arrival
            if drain is None or drain > self.drain_s_max:
                out.append(f"drain_s {'never' if drain is None else f'{drain:.1f}'} > {self.drain_s_max:g}")
        return out


@dataclass(frozen=True)
class Plan:
    """A named capacity plan: a model configuration."""

    name: str
    config: ModelConfig

    def describe_scaling(self) -> str:
        s = self.config.scaling
        if isinstance(s, ReactiveScaling):
            return f"reactive {s.consumers_min}-{s.consumers_max} @{s.backlog_high_events}"
        if isinstance(s, PredictiveScaling):
            return f"predictive {s.consumers_min}-{s.consumers_max} h={s.horizon_s:g}s"
        assert isinstance(s, NoScaling)
        return "none"


@dataclass(frozen=True)
class PlanStudy:
    """One load, one fault schedule, one SLO, several plans, replications from one seed."""

    name: str
    profile: LoadProfile
    faults: FaultSchedule
    slo: Slo
    plans: tuple
    replications: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.plans:
            raise ValueError('"plans" must hold at least one plan')
        names = [p.name for p in self.plans]
        if len(set(names)) != len(names):
            raise ValueError(f'"plans" names must be unique, got {names}')
        if not (isinstance(self.replications, int) and 1 <= self.replications <= REPLICATIONS_MAX):
            raise ValueError(f'"replications" must be a whole number within [1, {REPLICATIONS_MAX}], '
                             f"got {self.replications!r}")  # fmt: skip


def mean_ci(values) -> tuple[float, float]:
    """Mean and 95% half-width (Student t) of independent replications; half-width NaN for one value."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(data) == 0:
        return math.nan, math.nan
    if len(data) == 1:
        return float(data[0]), math.nan
    return float(data.mean()), t_quantile_975(len(data) - 1) * float(data.std(ddof=1)) / math.sqrt(len(data))


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: honest at 0/n and n/n, where the normal one collapses."""
    if trials == 0:
        return 0.0, 1.0
    z = 1.959963984540054
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    # The interval always holds the observed share; min/max only undo rounding.
    return min(share, max(0.0, centre - half)), max(share, min(1.0, centre + half))


@dataclass(frozen=True)
class PlanResult:
    """One plan's replications and their summary."""

    plan: Plan
    replications: pd.DataFrame  # one row per seed: figures and slo_met, misses
    timeline: pd.DataFrame  # the first replication's total backlog and consumers: time_s, metric, value
    attainment: float
    attainment_ci: tuple
    meets_slo: bool

    def row(self) -> dict:
        r = self.replications
        cfg = self.plan.config
        out = {
            "plan": self.plan.name,
            "consumers": cfg.consumers,
            "batch_size_max": cfg.batch_size_max,
            "partitions": cfg.partitions,
            "scaling": self.plan.describe_scaling(),
            "replications": len(r),
            "slo_attainment": self.attainment,
            "slo_attainment_ci_low": self.attainment_ci[0],
            "slo_attainment_ci_high": self.attainment_ci[1],
            "meets_slo": self.meets_slo,
        }
        for name in ("consumer_seconds", "latency_ms_p50", "latency_ms_p99", "shed_share", "dead_lettered_count",
                     "backlog_events_peak", "drain_s_after_last_arrival", "consumer_utilisation"):  # fmt: skip
            mean, half = mean_ci(r[name].tolist())
            out[f"{name}_mean"] = mean
            out[f"{name}_ci_half"] = half
        return out


@dataclass(frozen=True)
class PlanComparison:
    """Every plan's result and the cheapest plan that meets the SLO (None when none does)."""

    study: PlanStudy
    results: tuple
    cheapest: str | None

    def table(self) -> pd.DataFrame:
        """One row per plan, in the file's order."""
        rows = [r.row() for r in self.results]
        for row in rows:
            row["cheapest"] = row["plan"] == self.cheapest
        return pd.DataFrame(rows)

    def replications(self) -> pd.DataFrame:
        return pd.concat([r.replications.assign(plan=r.plan.name) for r in self.results], ignore_index=True)

    def timelines(self) -> pd.DataFrame:
        return pd.concat([r.timeline.assign(plan=r.plan.name) for r in self.results], ignore_index=True)


_FIGURES = ("arrivals_count", "accepted_count", "shed_count", "unavailable_count", "applied_count",
            "dead_lettered_count", "backlog_left_events", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99",
            "backlog_events_peak", "drain_s_after_last_arrival", "drain_s_after_peak", "consumer_seconds",
            "consumer_utilisation", "consumers_peak", "completed")  # fmt: skip


def compare_plans(study: PlanStudy, progress: Callable[[str, int], None] | None = None) -> PlanComparison:
    """Simulate every plan on every replication seed; judge the SLO; pick the cheapest plan that meets it.

    A plan meets the SLO when its share of replications meeting it is at least
    slo.attainment_min; among those, the cheapest has the lowest mean
    consumer-seconds. progress(plan_name, replication) is called before each run.
    """
    results = []
    for plan in study.plans:
        rows, timeline = [], None
        for i in range(study.replications):
            if progress is not None:
                progress(plan.name, i)
            seed = study.seed + i
            prediction = simulate(plan.config, study.profile, study.faults, seed, keep_trace=False)
            misses = study.slo.misses(prediction)
            row = {"seed": seed, **{k: getattr(prediction, k) for k in _FIGURES}}
            row["shed_share"] = prediction.shed_share
            row["slo_met"] = not misses
            row["misses"] = "; ".join(misses)
            rows.append(row)
            if timeline is None:
                m = prediction.metrics
                keep = ((m["metric"] == BACKLOG_METRIC) & m["partition"].isna()) | (m["metric"] == CONSUMERS_METRIC)
                timeline = m.loc[keep, ["time_s", "metric", "value"]].reset_index(drop=True)
        assert timeline is not None  # a study has at least one replication (checked in its __post_init__)
        frame = pd.DataFrame(rows)
        met = int(frame["slo_met"].sum())
        attainment = met / len(frame)
        results.append(
            PlanResult(
                plan,
                frame,
                timeline,
                attainment,
                wilson_interval(met, len(frame)),
                attainment >= study.slo.attainment_min,
            )  # fmt: skip
        )
    meeting = [r for r in results if r.meets_slo]
    cheapest = min(meeting, key=lambda r: r.replications["consumer_seconds"].mean()).plan.name if meeting else None
    return PlanComparison(study, tuple(results), cheapest)
