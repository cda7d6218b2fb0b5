"""The capacity model against queueing theory: M/M/c vs Erlang C, M/D/1 vs Pollaczek–Khinchine.

The simulations run the pipeline model itself (simulate(), the code path plans
use), configured to degenerate into the textbook queue: one partition shared
by every consumer, each consumer one server (one FIFO queue, c servers), batches of one, no overhead,
no backpressure. Each check asks that the formula's value lie inside the 95%
batch-means confidence interval of the simulation; the fixed seeds were not
chosen for passing (seed 1 and 2, the first ones tried). Each proof also has
a counter-test showing the check rejects a wrong model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.capacity import Deterministic, Exponential, ModelConfig, Ownership, Workers, simulate
from harness.capacity.theory import (
    batch_means_ci,
    erlang_b,
    erlang_c,
    md1_mean_wait_s,
    mg1_mean_wait_s,
    mmc_mean_wait_s,
    t_quantile_975,
)
from harness.load.profile import Steady


def _queue_config(servers: int, service) -> ModelConfig:
    return ModelConfig(
        partitions=1,
        consumers=servers,
        batch_size_max=1,
        overhead=Deterministic(0.0),
        per_event=service,
        ownership=Ownership.SHARED,
        workers=Workers.PER_CONSUMER,
        backlog_high_water_events=None,
    )


# --- the formulas on known values ---------------------------------------------


def test_erlang_b_and_c_known_values():
    # c=1: B = a/(1+a); C = a (the M/M/1 probability of waiting is ρ).
    assert erlang_b(1, 0.5) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    # c=2, a=1: B = (1/2)/(1 + 1 + 1/2) = 0.2; C = 2·0.2 / (2 − 1·(1 − 0.2)) = 1/3.
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)


def test_mmc_wait_reduces_to_mm1():
    lam, mu = 0.8, 1.0
    assert mmc_mean_wait_s(lam, mu, 1) == pytest.approx(lam / (mu * (mu - lam)))


def test_pk_known_values():
    # M/M/1 through P-K: E[S²] = 2/μ² gives W_q = ρ/(μ − λ).
    assert mg1_mean_wait_s(0.8, 1.0, 2.0) == pytest.approx(4.0)
    # M/D/1 waits half as long as M/M/1.
    assert md1_mean_wait_s(0.8, 1.0) == pytest.approx(2.0)


def test_unstable_queue_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="unstable"):
        mmc_mean_wait_s(3.0, 1.0, 3)


def test_t_quantile_table_and_expansion_meet():
    assert t_quantile_975(30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile_975(31) == pytest.approx(2.040, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)


def test_batch_means_covers_iid_mean():
    rng = np.random.default_rng(7)
    mean, half = batch_means_ci(rng.exponential(2.0, 30_000), batches=30, warmup_share=0.0)
    assert abs(mean - 2.0) <= half
    assert half < 0.1


def test_batch_means_refuses_too_few_samples():
    with pytest.raises(ValueError, match="too few"):
        batch_means_ci([1.0] * 100, batches=30)


# --- the model against the formulas --------------------------------------------

MMC_SERVERS, MMC_ARRIVAL_PER_S, MMC_SERVICE_PER_S = 3, 2.4, 1.0  # ρ = 0.8
MMC_DURATION_S = 50_000.0


@pytest.fixture(scope="module")
def mmc_trace():
    config = _queue_config(MMC_SERVERS, Exponential(1.0 / MMC_SERVICE_PER_S))
    prediction = simulate(config, Steady(MMC_ARRIVAL_PER_S, MMC_DURATION_S), None, seed=1)
    assert prediction.completed
    return prediction.trace


@pytest.fixture(scope="module")
def md1_trace():
    config = _queue_config(1, Deterministic(1.0))
    prediction = simulate(config, Steady(0.8, 100_000.0), None, seed=2)
    assert prediction.completed
    return prediction.trace


def test_mmc_mean_wait_matches_erlang_c(mmc_trace):
    expected_s = mmc_mean_wait_s(MMC_ARRIVAL_PER_S, MMC_SERVICE_PER_S, MMC_SERVERS)
    mean_s, half_s = batch_means_ci(mmc_trace.wait_s)
    assert abs(mean_s - expected_s) <= half_s, (mean_s, half_s, expected_s)


def test_mmc_probability_of_waiting_matches_erlang_c(mmc_trace):
    expected = erlang_c(MMC_SERVERS, MMC_ARRIVAL_PER_S / MMC_SERVICE_PER_S)
    waited = (mmc_trace.wait_s > 0).astype(float)
    share, half = batch_means_ci(waited)
    assert abs(share - expected) <= half, (share, half, expected)


def test_mmc_check_rejects_a_wrong_server_count(mmc_trace):
    # The proof can fail: the same simulation is far outside the CI of an M/M/4.
    wrong_s = mmc_mean_wait_s(MMC_ARRIVAL_PER_S, MMC_SERVICE_PER_S, MMC_SERVERS + 1)
    mean_s, half_s = batch_means_ci(mmc_trace.wait_s)
    assert abs(mean_s - wrong_s) > 3 * half_s


def test_md1_mean_wait_matches_pollaczek_khinchine(md1_trace):
    expected_s = md1_mean_wait_s(0.8, 1.0)
    mean_s, half_s = batch_means_ci(md1_trace.wait_s)
    assert abs(mean_s - expected_s) <= half_s, (mean_s, half_s, expected_s)


def test_md1_check_tells_deterministic_from_exponential_service(md1_trace):
    mm1_s = mg1_mean_wait_s(0.8, 1.0, 2.0)  # what an exponential server would give
    mean_s, half_s = batch_means_ci(md1_trace.wait_s)
    assert abs(mean_s - mm1_s) > 3 * half_s


def test_latency_is_wait_plus_service_in_the_degenerate_queue(md1_trace):
    # Deterministic service of 1 s: every end-to-end latency is its wait + 1 s exactly.
    assert np.allclose(md1_trace.latency_s, md1_trace.wait_s + 1.0)
    assert math.isclose(float(np.min(md1_trace.latency_s)), 1.0)
