"""Exploration: Hypothesis searches fault schedules and load shapes on the live stack, shrinks a failure,
and writes it as an ordinary scenario file that `ledgerchaos run` replays.

Why Hypothesis on a live system: its shrinker turns "something failed in a
storm of five faults" into the smallest schedule that still fails, which is what
a person can debug. Settings suit a live system: no per-example deadline, a
database of found examples in the project's cache folder (a failure found once
is tried first next time), and a bound on examples and on wall time (the budget).

The stack is started once and reused: each episode attaches to it, and the
run engine resets the reference system's state (tables dropped, `ledger:*`
keys deleted, proxies healed) before starting it again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky

from harness.errors import UsageError
from harness.explore.space import Episode, episodes
from harness.scenario import (
    ExploreSpec,
    Scenario,
    StackSpec,
    scenario_from_mapping,
    scenario_to_mapping,
    scenario_to_yaml,
)
from harness.scenario.serialise import section_to_mapping

__all__ = ["ExploreResult", "Explorer", "episode_scenario", "EPISODE_OVERHEAD_S"]

SEARCH_SHARE = 0.6  # of the budget for search and shrinking; the rest for removing faults one at a time
EPISODE_OVERHEAD_S = 12.0  # system start, Locust start, drain, observation: measured on this machine
CACHE_DIR = Path(".cache") / "hypothesis-explore"


class _Violation(AssertionError):
    """An invariant failed in an episode (Hypothesis's signal to shrink)."""


@dataclass(frozen=True)
class EpisodeResult:
    episode: Episode
    exit_code: int
    failed_checkers: tuple[str, ...]
    run_dir: Path


@dataclass
class ExploreResult:
    examples: int = 0
    failures_seen: int = 0
    budget_exhausted: bool = False
    minimal: EpisodeResult | None = None
    reproducer: Path | None = None
    replays: list[tuple[str, ...]] = field(default_factory=list)
    flaky: bool = False
    elapsed_s: float = 0.0

    @property
    def found(self) -> bool:
        return self.minimal is not None

    @property
    def replay_failure_rate(self) -> float | None:
        if not self.replays:
            return None
        return sum(1 for failed in self.replays if failed) / len(self.replays)


def episode_scenario(base: Scenario, spec: ExploreSpec, episode: Episode, stack: StackSpec | None = None) -> Scenario:
    """One episode as a validated Scenario: the base scenario with its faults, load shape and seed replaced.

    Built through the scenario-file form (scenario_to_mapping, then the loader), so an episode passes
    the same checks as a file a person writes, and its reproducer is that form written out.
    """
    raw = scenario_to_mapping(base)
    raw.pop("explore", None)
    raw["name"] = f"{base.name}-episode"
    raw["seed"] = episode.seed
    warmup_s = base.phases.warmup_s
    load = raw["load"]
    if episode.burst_multiplier > 1.0:
        load["profile"] = {
            "kind": "micro_burst",
            "base_rate_per_s": spec.base_rate_per_s,
            "duration_s": spec.episode_load_s,
            "burst_multiplier": episode.burst_multiplier,
            "burst_ms": 200,
            "period_s": 2,
            "first_burst_s": warmup_s,
        }
    else:
        load["profile"] = {"kind": "steady", "base_rate_per_s": spec.base_rate_per_s, "duration_s": spec.episode_load_s}
    load["generator"].update(duplicate_share=episode.duplicate_share, accounts=episode.accounts)
    raw["faults"] = [dict(f) for f in episode.faults]
    # The base's fault_windows_min counted the base's faults; the loader derives it from the episode's.
    raw.get("invariants", {}).pop("fault_windows_min", None)
    drain_s_max = base.phases.drain_s_max
    raw["duration_s_max"] = max(base.duration_s_max, spec.episode_load_s + drain_s_max + 30)
    raw["stack"] = section_to_mapping(stack) if stack is not None else {}
    return scenario_from_mapping(raw)


class Explorer:
    """One exploration: run with `explore()`. `run_episode` is a seam (the tests can fake it)."""

    def __init__(
        self,
        base: Scenario,
        spec: ExploreSpec,
        out_dir: Path,
        budget_s: float,
        run_episode: Callable[[Scenario, Path], tuple[int, tuple[str, ...]]],
        max_examples: int | None = None,
        replays: int = 3,
        database_dir: Path | None = None,
        log: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
        derandomize: bool = False,
    ) -> None:
        if budget_s <= 0:
            raise UsageError(f"--budget: must be more than 0 s, got {budget_s:g}")
        self.base = base
        self.spec = spec
        self.out_dir = Path(out_dir)
        self.budget_s = budget_s
        self.run_episode = run_episode
        episode_s = spec.episode_load_s + EPISODE_OVERHEAD_S
        self.max_examples = max_examples or max(1, int(budget_s * SEARCH_SHARE // episode_s))
        self.replays = replays
        self.database_dir = database_dir
        self.log = log
        self.clock = clock
        self.derandomize = derandomize  # the same sequence of examples every time (CI); False explores anew
        self._count = 0

    def _episode(self, episode: Episode, stack: StackSpec | None) -> EpisodeResult:
        self._count += 1
        scenario = episode_scenario(self.base, self.spec, episode, stack)
        run_dir = self.out_dir / f"episode-{self._count:03d}"
        code, failed = self.run_episode(scenario, run_dir)
        self.log(
            f"episode {self._count}: exit {code} {'FAILED ' + ','.join(failed) if failed else 'ok'} — "
            f"{episode.describe()}"
        )
        return EpisodeResult(episode, code, failed, run_dir)

    def explore(self, stack: StackSpec | None = None) -> ExploreResult:
        result = ExploreResult()
        began = self.clock()
        failing: list[EpisodeResult] = []
        self.out_dir.mkdir(parents=True, exist_ok=True)
        warmup_s = self.base.phases.warmup_s

        # The search and Hypothesis's shrink get SEARCH_SHARE of the budget; the rest is kept for the greedy
        # fault removal, so a failure found late is still reduced before the budget ends.
        search_budget_s = self.budget_s * SEARCH_SHARE

        @settings(
            max_examples=self.max_examples,
            deadline=None,
            database=DirectoryBasedExampleDatabase(str(self.database_dir)) if self.database_dir else None,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
            derandomize=self.derandomize,
            print_blob=False,
            report_multiple_bugs=False,
        )
        @given(episodes(self.spec, warmup_s))
        def property_(episode: Episode) -> None:
            # Past the budget, every further example (and shrink step) is discarded unrun.
            if self.clock() - began > search_budget_s:
                result.budget_exhausted = True
                assume(False)
            result.examples += 1
            outcome = self._episode(episode, stack)
            if outcome.exit_code != 0:
                result.failures_seen += 1
                failing.append(outcome)
                raise _Violation(f"{','.join(outcome.failed_checkers) or 'run'} failed: {episode.describe()}")

        try:
            property_()
        except _Violation:
            pass
        except Flaky:
            # Past the budget the final replay is discarded unrun, which Hypothesis calls flaky; only a replay
            # that really ran and passed is flakiness (the replays below measure its rate either way).
            result.flaky = not result.budget_exhausted
        result.elapsed_s = self.clock() - began
        if failing:
            # The smallest failure seen: fewest faults first, then the gentlest load. Hypothesis replays
            # its shrunk minimum last, so on a tie the later one wins.
            best = min(
                reversed(failing),
                key=lambda r: (r.episode.fault_count(), r.episode.burst_multiplier, r.episode.duplicate_share),
            )
            result.minimal = self._drop_faults(best, stack, began)
            best = result.minimal
            result.reproducer = self._write_reproducer(best)
            result.replays = [self._replay(best, i, stack) for i in range(self.replays)]
        return result

    def _drop_faults(self, best: EpisodeResult, stack, began: float) -> EpisodeResult:
        """Greedy one-at-a-time removal of faults after Hypothesis's shrink (which can stop at a local
        minimum when faults interleave): keep a removal while the same checkers still fail. Bounded by
        the fault count per pass and by the budget."""
        improved = True
        while improved and best.episode.faults and self.clock() - began <= self.budget_s:
            improved = False
            for index in range(len(best.episode.faults)):
                faults = best.episode.faults[:index] + best.episode.faults[index + 1 :]
                candidate = self._episode(replace(best.episode, faults=faults), stack)
                if candidate.exit_code != 0 and set(best.failed_checkers) <= set(candidate.failed_checkers):
                    best = candidate
                    improved = True
                    break
                if self.clock() - began > self.budget_s:
                    break
        return best

    def _write_reproducer(self, best: EpisodeResult) -> Path:
        reproducer = dataclasses.replace(
            episode_scenario(self.base, self.spec, best.episode, stack=None),
            name=f"{self.base.name}-reproducer",
            description=(
                f"Found by `ledgerchaos explore`: {best.episode.describe()}. "
                f"Failed: {', '.join(best.failed_checkers) or 'the run'}."
            ),
        )
        path = self.out_dir / "reproducer.yaml"
        path.write_text(scenario_to_yaml(reproducer), encoding="utf-8")
        (self.out_dir / "reproducer.json").write_text(
            json.dumps(
                {
                    "seed": best.episode.seed,
                    "failed_checkers": list(best.failed_checkers),
                    "episode_run_dir": str(best.run_dir),
                    "replay": f"ledgerchaos run {path} --seed {best.episode.seed}",
                },
                indent=2,
            )
        )
        return path

    def _replay(self, best: EpisodeResult, index: int, stack: StackSpec | None) -> tuple[str, ...]:
        scenario = episode_scenario(self.base, self.spec, best.episode, stack)
        code, failed = self.run_episode(scenario, self.out_dir / f"replay-{index + 1}")
        self.log(f"replay {index + 1}/{self.replays}: exit {code} {','.join(failed) if failed else 'ok'}")
        return tuple(failed) if code != 0 else ()
