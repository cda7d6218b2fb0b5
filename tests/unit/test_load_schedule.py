"""Tests for harness.load.schedule: workers split the one seeded schedule without gaps or overlap."""

import itertools

from harness.load.generator import GeneratorConfig
from harness.load.profile import MicroBurst, arrival_times
from harness.load.schedule import arrival_rng, open_schedule

PROFILE = MicroBurst(base_rate_per_s=50, duration_s=6)
GEN = GeneratorConfig(duplicate_share=0.1, invalid_share=0.1)


def test_intended_times_are_the_profile_arrivals_shifted_by_the_offset():
    schedule = list(open_schedule(PROFILE, GEN, seed=3, start_offset_s=2.5))
    expected = list(arrival_times(PROFILE, arrival_rng(3)))
    assert [a.k for a in schedule] == list(range(len(expected)))
    assert [a.intended_time_s for a in schedule] == [2.5 + t for t in expected]


def test_workers_partition_the_whole_schedule():
    whole = list(open_schedule(PROFILE, GEN, seed=9))
    for workers in (2, 3):
        parts = [list(open_schedule(PROFILE, GEN, seed=9, worker_index=i, workers=workers)) for i in range(workers)]
        for i, part in enumerate(parts):
            assert all(a.k % workers == i for a in part)
        merged = sorted(itertools.chain.from_iterable(parts), key=lambda a: a.k)
        assert merged == whole


def test_generator_settings_do_not_move_arrivals():
    a = [x.intended_time_s for x in open_schedule(PROFILE, GeneratorConfig(), seed=1)]
    b = [x.intended_time_s for x in open_schedule(PROFILE, GeneratorConfig(invalid_share=0.5), seed=1)]
    assert a == b
