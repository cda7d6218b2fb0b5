"""Tests for harness.load.codec: profiles round-trip through JSON; bad input names the field."""

import json

import pytest

from harness.load.codec import PROFILE_KINDS, kind_of, profile_from_dict, profile_to_dict
from harness.load.profile import MicroBurst, Ramp, Sequence, Spike, Steady, Surge

PROFILES = [
    Steady(base_rate_per_s=50, duration_s=10),
    Ramp(start_rate_per_s=1, end_rate_per_s=100, duration_s=30),
    MicroBurst(base_rate_per_s=20, duration_s=6),
    MicroBurst(base_rate_per_s=20, duration_s=6, burst_multiplier=5, burst_ms=100, period_s=1, first_burst_s=0.5),
    Spike(base_rate_per_s=10, peak_rate_per_s=200, at_s=3, width_s=1, duration_s=10),
    Surge(base_rate_per_s=10, peak_rate_per_s=90, ramp_up_s=5, hold_s=5, ramp_down_s=5, duration_s=20, start_s=2),
    Sequence(parts=(Steady(10, 5), Sequence(parts=(MicroBurst(5, 4), Ramp(1, 2, 3))))),
]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: type(p).__name__)
def test_round_trip_through_json(profile):
    data = json.loads(json.dumps(profile_to_dict(profile)))
    assert data["kind"] == kind_of(profile)
    assert profile_from_dict(data) == profile


def test_every_kind_has_a_name():
    assert set(PROFILE_KINDS) == {"steady", "ramp", "micro_burst", "spike", "surge", "sequence"}


def test_defaults_apply_when_omitted():
    p = profile_from_dict({"kind": "micro_burst", "base_rate_per_s": 10, "duration_s": 4})
    assert p == MicroBurst(base_rate_per_s=10, duration_s=4)


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"kind": "stedy", "base_rate_per_s": 1, "duration_s": 1}, "profile.kind: 'stedy'"),
        ({"base_rate_per_s": 1, "duration_s": 1}, "profile.kind"),
        ({"kind": "steady", "duration_s": 1}, "profile.base_rate_per_s: missing"),
        ({"kind": "steady", "base_rate_per_s": 1, "duration_s": 1, "rate": 3}, "profile.rate: not a field"),
        ({"kind": "steady", "base_rate_per_s": "fast", "duration_s": 1}, "profile.base_rate_per_s: must be a number"),
        ({"kind": "steady", "base_rate_per_s": True, "duration_s": 1}, "profile.base_rate_per_s: must be a number"),
        ({"kind": "steady", "base_rate_per_s": float("nan"), "duration_s": 1}, "must be a finite number"),
        ({"kind": "steady", "base_rate_per_s": -1, "duration_s": 1}, '"base_rate_per_s" must be >= 0'),
        ({"kind": "sequence", "parts": []}, "profile.parts: must be a non-empty list"),
        (
            {"kind": "sequence", "parts": [{"kind": "steady", "base_rate_per_s": 1, "duration_s": 0}]},
            'profile.parts[0]: "duration_s" must be > 0',
        ),
        ("steady", "expected a mapping"),
    ],
)
def test_bad_input_names_the_field(data, fragment):
    with pytest.raises(ValueError) as info:
        profile_from_dict(data)
    assert fragment in str(info.value)


def test_where_prefixes_messages():
    with pytest.raises(ValueError, match=r"^load\.profile\.duration_s: missing"):
        profile_from_dict({"kind": "steady", "base_rate_per_s": 1}, where="load.profile")


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="not a known profile"):
        profile_to_dict(object())
