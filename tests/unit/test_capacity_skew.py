"""Partition skew: shares computed from the generator's hot keys, honoured by the model, spelled in a plans file."""

from __future__ import annotations

import numpy as np
import pytest

from harness.capacity import ModelConfig, simulate
from harness.capacity.plans_file import study_from_mapping
from harness.capacity.skew import partition_of, partition_weights
from harness.errors import ScenarioError
from harness.load.generator import GeneratorConfig, account_name
from harness.load.profile import Steady


def test_partition_function_is_crc32_like_the_reference_system():
    # crc32(b"acct-000001") = 0x... ; checked against zlib, and stable across processes unlike hash().
    import zlib

    assert partition_of("acct-000001", 7) == zlib.crc32(b"acct-000001") % 7


def test_uniform_keys_spread_by_account_count():
    weights = partition_weights(GeneratorConfig(accounts=100, zipf_exponent=0.0), 4)
    counts = np.bincount([partition_of(account_name(r), 4) for r in range(1, 101)], minlength=4)
    assert np.allclose(weights, counts / 100)


def test_hot_key_partition_carries_the_hottest_account():
    generator = GeneratorConfig(accounts=1000, zipf_exponent=1.1)
    weights = partition_weights(generator, 16)
    hottest = partition_of(account_name(1), 16)
    top_share = 1.0 / sum(1.0 / r**1.1 for r in range(1, 1001))
    assert sum(weights) == pytest.approx(1.0)
    assert weights[hottest] == max(weights) and weights[hottest] > top_share


def test_model_draws_partitions_with_the_weights():
    weights = (0.7, 0.1, 0.1, 0.1)
    p = simulate(ModelConfig(partitions=4, partition_weights=weights), Steady(2000, 5), None, seed=3)
    shares = np.bincount(p.trace.partition, minlength=4) / p.arrivals_count
    assert np.allclose(shares, weights, atol=0.02)


def test_bad_weights_name_the_field():
    with pytest.raises(ValueError, match="partition_weights"):
        ModelConfig(partitions=3, partition_weights=(1.0, 1.0))


def test_plans_file_spells_skew_as_the_generator_does():
    doc = {
        "load": {"kind": "steady", "base_rate_per_s": 10, "duration_s": 5},
        "slo": {"latency_ms_p99_max": 1000},
        "system": {"partitions": 8, "partition_weights": {"accounts": 1000, "zipf_exponent": 1.1}},
        "plans": [{"name": "a"}, {"name": "b", "partitions": 4}],
    }
    study = study_from_mapping(doc)
    assert study.plans[0].config.partition_weights == partition_weights(GeneratorConfig(), 8)
    assert len(study.plans[1].config.partition_weights) == 4  # recomputed for the plan's own partitions
    doc["system"]["partition_weights"] = {"accounts": 1, "zipf_exponent": 1.1}
    with pytest.raises(ScenarioError, match=r"system\.partition_weights"):
        study_from_mapping(doc)
