"""Calibration on synthetic histories made by the model itself: the fit recovers known service times,
then predicts a different run; the prediction error is reported and can be large when the model is wrong."""

from __future__ import annotations

import dataclasses

import pytest

from harness.capacity import LogNormal, ModelConfig, simulate
from harness.capacity.calibrate import base_config_from, calibrate, predict_run, prediction_error
from harness.capacity.measured import measure, offered_arrivals_s
from harness.capacity.synthetic import history_from_prediction
from harness.load.profile import MicroBurst, Spike
from harness.report.plan_plots import plot_prediction_vs_measurement

TRUTH = ModelConfig(partitions=4, consumers=2, batch_size_max=50, overhead=LogNormal(0.02, 0.5),
                    per_event=LogNormal(0.003, 0.8))  # fmt: skip
# What the fit starts from: the right structure and families, wrong means (½× and ⅓×).
BASE = dataclasses.replace(TRUTH, overhead=LogNormal(0.01, 0.5), per_event=LogNormal(0.001, 0.8))
# Calm base load with 10× bursts: small batches and full ones, so overhead and per-event cost separate.
CALIBRATION_LOAD = MicroBurst(base_rate_per_s=120, duration_s=30)
OTHER_LOAD = Spike(base_rate_per_s=80, peak_rate_per_s=500, at_s=10, width_s=5, duration_s=30)


@pytest.fixture(scope="module")
def calibration_history():
    return history_from_prediction(simulate(TRUTH, CALIBRATION_LOAD, None, seed=21))


@pytest.fixture(scope="module")
def other_history():
    return history_from_prediction(simulate(TRUTH, OTHER_LOAD, None, seed=22))


@pytest.fixture(scope="module")
def fitted(calibration_history):
    # Another seed than the history's: the fit must not depend on replaying the same draws.
    return calibrate(calibration_history, BASE, seed=5)


def test_measure_reads_the_synthetic_history_like_the_model(calibration_history):
    run = simulate(TRUTH, CALIBRATION_LOAD, None, seed=21)
    measured = measure(calibration_history)
    assert measured.apply_source == "committed_s" and measured.latency_basis == "commit"
    assert measured.latency_ms_p99 == pytest.approx(run.latency_ms_p99)
    assert measured.backlog_events_peak == run.backlog_events_peak
    assert len(offered_arrivals_s(calibration_history)) == run.arrivals_count


def test_fit_recovers_overhead_and_per_event_means(fitted):
    assert fitted.overhead.mean_s == pytest.approx(0.02, rel=0.15)
    assert fitted.per_event.mean_s == pytest.approx(0.003, rel=0.15)
    assert fitted.consumers == TRUTH.consumers and fitted.overhead.cv == 0.5


def test_fit_without_apply_times_uses_the_posted_counter(calibration_history):
    run = simulate(TRUTH, CALIBRATION_LOAD, None, seed=21)
    coarse = history_from_prediction(run, apply_column=None)
    assert measure(coarse).apply_source == "posted_counter"
    fit = calibrate(coarse, BASE, seed=5, evaluations_max=40)
    # Apply times known to a 250 ms sample only: a looser, still useful fit.
    assert fit.overhead.mean_s == pytest.approx(0.02, rel=0.4)
    assert fit.per_event.mean_s == pytest.approx(0.003, rel=0.4)


def test_calibrated_model_predicts_a_different_run(fitted, other_history):
    errors = prediction_error(predict_run(fitted, other_history, seed=9), other_history)
    for name in ("latency_ms_p50", "latency_ms_p95", "latency_ms_p99"):
        assert abs(errors[name]["error_rel"]) < 0.15, (name, errors[name])
    assert set(errors) == {"latency_ms_p50", "latency_ms_p95", "latency_ms_p99", "backlog_events_peak",
                           "drain_s_after_last_arrival", "drain_s_after_peak", "latency_basis"}  # fmt: skip
    assert errors["latency_basis"] == "commit"


def test_fit_on_transaction_start_stamps_compares_like_with_like():
    # The reference system's applied_at is the transaction's start: latencies to it leave
    # the batch's own time out, and the model is compared on that basis.
    run = simulate(TRUTH, CALIBRATION_LOAD, None, seed=21)
    stamped = history_from_prediction(run, apply_column="applied_s")
    measured = measure(stamped)
    assert measured.latency_basis == "start"
    assert measured.latency_ms_p99 < run.latency_ms_p99
    fit = calibrate(stamped, BASE, seed=5, evaluations_max=40)
    assert fit.overhead.mean_s == pytest.approx(0.02, rel=0.4)
    assert fit.per_event.mean_s == pytest.approx(0.003, rel=0.4)
    errors = prediction_error(predict_run(fit, stamped, seed=9), stamped)
    assert errors["latency_basis"] == "start"


def test_prediction_error_exposes_an_uncalibrated_model(other_history):
    # The starting guess (service 2-3× too fast) predicts latencies far too low: the error says so.
    errors = prediction_error(predict_run(BASE, other_history, seed=9), other_history)
    assert errors["latency_ms_p99"]["error_rel"] < -0.4


def test_base_config_comes_from_the_history_meta(calibration_history):
    base = base_config_from(calibration_history)
    assert (base.consumers, base.partitions, base.batch_size_max) == (2, 4, 50)


def test_history_without_journal_cannot_be_fitted(calibration_history):
    broken = dataclasses.replace(calibration_history, observation=None)
    with pytest.raises(ValueError, match="no observation"):
        calibrate(broken, BASE)


def test_prediction_over_measurement_plot(tmp_path, fitted, other_history):
    prediction = predict_run(fitted, other_history, seed=9)
    errors = prediction_error(prediction, other_history)
    latency = {n.replace("latency_ms_", ""): errors[n] for n in ("latency_ms_p50", "latency_ms_p95", "latency_ms_p99")}
    path = plot_prediction_vs_measurement(prediction.metrics, other_history.metrics, latency, tmp_path / "pm.png")
    assert path.stat().st_size > 10_000
