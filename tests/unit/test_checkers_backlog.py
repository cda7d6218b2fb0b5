"""backlog_bounded: the sampled backlog stays under its bound; no bound, not judged; no samples, unknown."""

from __future__ import annotations

import pandas as pd

from harness.checkers import CheckConfig, Validity
from harness.checkers.backlog import backlog_bounded
from harness.history.schema import METRICS_COLUMNS, OPS_COLUMNS, History, RunMeta, conform, empty_frame


def history(samples) -> History:
    rows = [{"time_s": t, "metric": m, "partition": p, "value": v} for t, m, p, v in samples]
    metrics = conform(pd.DataFrame(rows), METRICS_COLUMNS, "metrics") if rows else empty_frame(METRICS_COLUMNS)
    return History(ops=empty_frame(OPS_COLUMNS), metrics=metrics, observation=None, meta=RunMeta("r", 1))


def total(t, v):
    return (t, "ledger_backlog_events_total", None, v)


def test_under_the_bound_holds():
    verdict = backlog_bounded(
        history([total(0.0, 10), total(0.25, 900), total(0.5, 0)]), CheckConfig(backlog_events_max=1000)
    )
    assert verdict.validity is Validity.VALID and verdict.figures["backlog_events_peak"] == 900


def test_over_the_bound_is_a_violation_with_evidence():
    verdict = backlog_bounded(
        history([total(0.0, 10), total(0.25, 2500), total(0.5, 3100), total(0.75, 5)]),
        CheckConfig(backlog_events_max=1000),
    )
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["samples_over_bound"] == 2 and verdict.figures["backlog_events_peak"] == 3100
    assert "3100" in verdict.evidence[0].problem and len(verdict.evidence[0].ops) == 2


def test_per_partition_samples_are_summed_when_no_total():
    samples = [(1.0, "ledger_backlog_events", 0, 600), (1.0, "ledger_backlog_events", 1, 600)]
    verdict = backlog_bounded(history(samples), CheckConfig(backlog_events_max=1000))
    assert verdict.validity is Validity.INVALID and verdict.figures["backlog_events_peak"] == 1200


def test_no_bound_judges_nothing_and_no_samples_with_a_bound_is_unknown():
    no_bound = backlog_bounded(history([total(0.0, 99)]), CheckConfig())
    assert no_bound.validity is Validity.NOT_JUDGED and "peak 99 events" in no_bound.summary
    assert no_bound.figures["backlog_events_peak"] == 99  # the peak is still reported
    assert backlog_bounded(history([]), CheckConfig()).validity is Validity.NOT_JUDGED
    assert backlog_bounded(history([]), CheckConfig(backlog_events_max=5)).validity is Validity.UNKNOWN


def part(t, p, v):
    return (t, "ledger_backlog_events", p, v)


def test_partitions_sampled_milliseconds_apart_are_summed_not_judged_one_by_one():
    """300 + 250 against a bound of 500, sampled 3 ms apart: violated (was 'peak 300' when summed per timestamp)."""
    samples = [part(0.0, 0, 300), part(0.003, 1, 250), part(1.0, 0, 10), part(1.004, 1, 20)]
    verdict = backlog_bounded(history(samples), CheckConfig(backlog_events_max=500))
    assert verdict.validity is Validity.INVALID and verdict.figures["backlog_events_peak"] == 550


def test_a_recorded_sampling_round_is_summed_as_one():
    rows = [part(0.0, 0, 300), part(0.003, 1, 250), part(1.0, 0, 10), part(1.004, 1, 20)]
    metrics = conform(
        pd.DataFrame([{"time_s": t, "metric": m, "partition": p, "value": v} for t, m, p, v in rows]).assign(
            round=[1, 1, 2, 2]
        ),
        METRICS_COLUMNS,
        "metrics",
    )
    h = History(ops=empty_frame(OPS_COLUMNS), metrics=metrics, observation=None, meta=RunMeta("r", 1))
    verdict = backlog_bounded(h, CheckConfig(backlog_events_max=500))
    assert verdict.validity is Validity.INVALID and verdict.counts["samples"] == 2  # two rounds, not four samples
    assert backlog_bounded(h, CheckConfig(backlog_events_max=600)).validity is Validity.VALID
