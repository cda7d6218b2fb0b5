"""Tests for harness.load.config: settings are checked at the edge and survive the trip to the child as JSON."""

import json
from pathlib import Path

import pytest

from harness.load.config import LoadModel, LoadRunConfig, RetryPolicy
from harness.load.generator import GeneratorConfig
from harness.load.profile import MicroBurst, Sequence, Steady


def config(**overrides):
    base = dict(
        api_url="http://127.0.0.1:8000",
        profile=MicroBurst(base_rate_per_s=10, duration_s=4),
        t0_monotonic=100.0,
        ops_dir=Path("/tmp/lc-load/x"),
    )
    base.update(overrides)
    return LoadRunConfig(**base)


def test_round_trip_through_json():
    original = config(
        profile=Sequence(parts=(Steady(5, 2), MicroBurst(10, 4))),
        seed=42,
        generator=GeneratorConfig(duplicate_share=0.1, currencies=("EUR",)),
        retry=RetryPolicy(attempts_max=2, retry_statuses=(429,)),
        workers=3,
        model="closed",
        users=7,
        duration_s_max=30.0,
        record=False,
    )
    again = LoadRunConfig.from_json(json.loads(json.dumps(original.to_json())))
    assert again == original
    assert again.model is LoadModel.CLOSED


def test_run_s_max_covers_start_profile_and_drain():
    c = config(
        start_offset_s=2.0,
        request_timeout_s=1.0,
        retry=RetryPolicy(attempts_max=2, wait_s_max=3, resolve_attempts_max=1, resolve_delay_s=0.5),
    )
    assert c.drain_s_max == 2 * 1.0 + 3 + 1 * (1.0 + 0.5)
    assert c.run_s_max == 2.0 + 4 + c.drain_s_max + 10.0
    assert config(duration_s_max=9.0).run_s_max == 9.0


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"api_url": "127.0.0.1:8000"}, "api_url: '127.0.0.1:8000' is not an http(s) URL"),
        ({"profile": "steady"}, "profile:"),
        ({"workers": 0}, "workers: must be a whole number in [1, 64]"),
        ({"users": 0}, "users:"),
        ({"request_timeout_s": 0}, "request_timeout_s:"),
        ({"start_offset_s": -1}, "start_offset_s:"),
        ({"ops_max": 1}, "ops_max:"),
        ({"duration_s_max": 0}, "duration_s_max:"),
        ({"model": "half-open"}, "half-open"),
    ],
)
def test_bad_settings_name_the_field(overrides, fragment):
    with pytest.raises(ValueError) as info:
        config(**overrides)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"attempts_max": 0}, "retry.attempts_max"),
        ({"wait_s_max": -1}, "retry.wait_s_max"),
        ({"retry_statuses": (200,)}, "retry.retry_statuses: 200"),
        ({"resolve_attempts_max": -1}, "retry.resolve_attempts_max"),
    ],
)
def test_bad_retry_policy_names_the_field(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        RetryPolicy(**kwargs)
    assert fragment in str(info.value)


def test_from_json_names_unknown_fields():
    data = config().to_json()
    data["retry"]["attempts"] = 3
    with pytest.raises(ValueError, match="retry:"):
        LoadRunConfig.from_json(data)
