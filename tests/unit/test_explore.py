"""The explorer searches, shrinks to a minimal schedule, writes a valid reproducer and measures flakiness.

The episode runner is the seam: here an in-memory model of a system stands in
for the live stack (the live demonstration is tests/integration/test_explore_live.py).
"""

from __future__ import annotations

import random

import pytest

from harness.errors import UsageError
from harness.explore.command import parse_budget_s
from harness.explore.explorer import Explorer, episode_scenario
from harness.explore.space import Episode
from harness.faults.schedule import ProcessAction, ProcessFault
from harness.scenario import ExploreSpec, StackMode, StackSpec, load_scenario, scenario_from_mapping

BASE_FILE = {
    "name": "base",
    "seed": 1,
    "load": {"profile": {"kind": "steady", "base_rate_per_s": 50, "duration_s": 10}},
    "phases": {"warmup_s": 1, "drain_s_max": 20},
}
BASE = scenario_from_mapping(BASE_FILE)
SPEC = ExploreSpec(episode_load_s=10, faults_max=4, process_actions=("kill", "pause"))


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def fails_when(predicate, clock=None, episode_s=0.0):
    runs = []

    def run(scenario, run_dir):
        runs.append(scenario)
        if clock is not None:
            clock.t += episode_s
        return (1, ("no_lost_ack",)) if predicate(scenario) else (0, ())

    return run, runs


def has_kill(scenario) -> bool:
    return any(isinstance(f, ProcessFault) and f.action is ProcessAction.KILL for f in scenario.faults)


def test_a_kill_triggered_bug_is_found_and_shrunk_to_one_fault(tmp_path):
    run, runs = fails_when(has_kill)
    explorer = Explorer(
        BASE, SPEC, tmp_path, budget_s=3600, run_episode=run, max_examples=60, replays=3, log=lambda line: None
    )
    result = explorer.explore()
    assert result.found
    assert result.minimal.episode.fault_count() == 1
    (fault,) = result.minimal.episode.faults
    assert fault["action"] == "kill"
    reproducer = load_scenario(result.reproducer)  # an ordinary scenario file
    assert len(reproducer.faults) == 1 and reproducer.stack.mode.value == "local"
    assert result.replay_failure_rate == 1.0


def test_a_correct_system_yields_nothing(tmp_path):
    run, runs = fails_when(lambda raw: False)
    result = Explorer(
        BASE, SPEC, tmp_path, budget_s=3600, run_episode=run, max_examples=15, log=lambda line: None
    ).explore()
    assert not result.found and result.reproducer is None
    assert 1 <= result.examples <= 15


def test_the_budget_bounds_the_search(tmp_path):
    clock = FakeClock()
    run, runs = fails_when(lambda raw: False, clock=clock, episode_s=20.0)
    result = Explorer(
        BASE, SPEC, tmp_path, budget_s=100, run_episode=run, max_examples=50, log=lambda line: None, clock=clock
    ).explore()
    assert len(runs) <= 6 and result.budget_exhausted


def test_a_flaky_failure_is_reported_with_its_rate(tmp_path):
    rng = random.Random(3)
    run, runs = fails_when(lambda raw: has_kill(raw) and rng.random() < 0.5)
    result = Explorer(
        BASE, SPEC, tmp_path, budget_s=3600, run_episode=run, max_examples=60, replays=8, log=lambda line: None
    ).explore()
    assert result.found
    assert 0.0 <= result.replay_failure_rate < 1.0  # not hidden as deterministic


def test_episode_scenario_keeps_the_base_and_replaces_faults_and_load():
    episode = Episode(
        faults=({"kind": "down", "link": "consumer_redis", "start_s": 2.0, "duration_s": 1.0},),
        burst_multiplier=4.0,
        duplicate_share=0.05,
        accounts=30,
        seed=9,
    )
    stack = StackSpec(StackMode.ATTACH, redis_url="redis://127.0.0.1:1/0", postgres_url="postgresql://p@127.0.0.1:2/p")
    scenario = episode_scenario(BASE, SPEC, episode, stack=stack)
    assert scenario.seed == 9 and scenario.load.profile.burst_multiplier == 4.0
    assert scenario.load.generator.duplicate_share == 0.05 and len(scenario.faults) == 1
    assert scenario.stack == stack and scenario.invariants.fault_windows_min == 1
    assert BASE.load.profile.duration_s == 10 and not BASE.faults  # the base is not modified


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1.5h", 5400), ("45", 45)])
def test_budget_parsing(text, seconds):
    assert parse_budget_s(text) == seconds


@pytest.mark.parametrize("text", ["ten minutes", "0s", "-5m", "48h"])
def test_bad_budgets_are_usage_errors(text):
    with pytest.raises(UsageError, match="--budget"):
        parse_budget_s(text)


def test_bad_explore_bounds_name_the_field():
    from harness.errors import ScenarioError

    with pytest.raises(ScenarioError, match="explore.*links.*'kafka'"):
        scenario_from_mapping({**BASE_FILE, "explore": {"links": ["kafka"]}})
    with pytest.raises(ScenarioError, match="explore.faults_maxx: unknown setting; did you mean 'faults_max'"):
        scenario_from_mapping({**BASE_FILE, "explore": {"faults_maxx": 2}})
