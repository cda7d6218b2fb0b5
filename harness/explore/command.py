"""`ledgerchaos explore SCENARIO.yaml --budget 10m`: search, shrink, write the reproducer, replay it.

Exit codes: 0 nothing found within the budget, 1 a violation was found (the
reproducer path and its replay failure rate are printed), 2 bad input, 3 the
stack could not start.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from harness.errors import UsageError
from harness.explore.explorer import CACHE_DIR, Explorer
from harness.scenario import ExploreSpec, Scenario, StackMode, StackSpec, load_scenario

__all__ = ["explore_command", "parse_budget_s", "live_episode"]

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
BUDGET_S_MAX = 24 * 3600


def parse_budget_s(text: str) -> float:
    """'90s', '10m', '1.5h' or a bare number of seconds."""
    match = _BUDGET.match(text or "")
    if not match:
        raise UsageError(f"--budget: {text!r} is not a duration; write e.g. 90s, 10m or 1h")
    value = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not 0 < value <= BUDGET_S_MAX:
        raise UsageError(f"--budget: {text!r} is outside (0 s, 24 h]")
    return value


def live_episode(scenario: Scenario, run_dir: Path) -> tuple[int, tuple[str, ...]]:
    """Run one episode for real; (exit code, names of the checkers that did not pass)."""
    from harness.run.engine import RunOptions, run_scenario

    outcome = run_scenario(scenario, RunOptions(reports_dir=run_dir.parent, run_id=run_dir.name))
    allowed = scenario.invariants.allow_unknown if scenario.invariants is not None else frozenset()
    failed = tuple(
        v.name
        for v in outcome.verdicts
        if v.validity.value == "invalid" or (v.validity.value == "unknown" and v.name not in allowed)
    )
    if outcome.exit_code == 3:
        failed = failed + ("incomplete_run",)
    return outcome.exit_code, failed


def explore_command(
    scenario_path: Path,
    budget: str,
    reports_dir: Path,
    max_examples: int | None = None,
    replays: int = 3,
    out: TextIO = sys.stdout,
) -> int:
    budget_s = parse_budget_s(budget)
    scenario = load_scenario(scenario_path)
    spec = scenario.explore or ExploreSpec()
    if replays < 1 or replays > 100:
        raise UsageError(f"--replays: must be in [1, 100], got {replays}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(reports_dir) / f"explore-{scenario.name}-{stamp}"
    from harness.stack import LocalStack, StackConfig

    def log(line: str) -> None:
        print(line, file=out, flush=True)

    explorer = Explorer(
        scenario,
        spec,
        out_dir,
        budget_s,
        live_episode,
        max_examples=max_examples,
        replays=replays,
        database_dir=CACHE_DIR / scenario.name,
        log=log,
    )
    log(
        f"exploring {scenario.name} for up to {budget_s:g} s ({explorer.max_examples} examples at most); "
        f"output in {out_dir}"
    )
    with LocalStack(StackConfig(run_dir=out_dir / "stack")) as services:
        stack = StackSpec(
            mode=StackMode.ATTACH,
            redis_url=services.redis_url,
            postgres_url=services.postgres_url,
            toxiproxy_url=services.toxiproxy_url,
        )
        result = explorer.explore(stack)
    log(
        f"{result.examples} example(s) in {result.elapsed_s:.0f} s"
        + (" (budget exhausted)" if result.budget_exhausted else "")
    )
    if not result.found:
        log("no invariant violated within the budget")
        return 0
    best = result.minimal
    rate = result.replay_failure_rate
    log(f"FOUND: {', '.join(best.failed_checkers)} — {best.episode.describe()}")
    log(f"reproducer: {result.reproducer}  (replay: ledgerchaos run {result.reproducer})")
    if rate is not None:
        kind = "deterministic" if rate == 1.0 else ("flaky" if rate > 0 else "not reproduced")
        log(f"replayed {len(result.replays)} time(s): failed {rate:.0%} ({kind})")
    if result.flaky:
        log("Hypothesis reported the failure as flaky: it did not fail again on the same input")
    return 1
