"""`ledgerchaos run`: validate the scenario (exit 2 before anything starts), run it, print the outcome.

Kept apart from the engine so the engine stays a library call (the explorer and
the pytest plugin run scenarios without a terminal).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TextIO

from harness.run.engine import RunOptions, run_scenario
from harness.run.progress import ProgressDisplay
from harness.scenario import load_scenario, with_overrides

__all__ = ["run_command", "replay_command"]


def replay_command(scenario_path: Path, seed: int) -> str:
    return f"ledgerchaos run {shlex.quote(str(scenario_path))} --seed {seed}"


def run_command(
    scenario_path: Path,
    seed: int | None,
    reports_dir: Path,
    run_id: str | None = None,
    progress: bool = True,
    out: TextIO = sys.stdout,
    variant: str | None = None,
) -> int:
    scenario = with_overrides(load_scenario(scenario_path), seed=seed, variant=variant)
    replay = replay_command(scenario_path, scenario.seed) + (f" --variant {variant}" if variant else "")
    print(f"scenario {scenario.name}: seed {scenario.seed} (replay: {replay})", file=out, flush=True)
    display = ProgressDisplay(out, live=None if progress else False)
    with display:
        outcome = run_scenario(scenario, RunOptions(reports_dir=reports_dir, run_id=run_id, progress=display))
    for note in outcome.notes:
        print(f"note: {note}", file=out)
    for verdict in outcome.verdicts:
        print(f"  {verdict.validity.value.upper():8s} {verdict.name}: {verdict.summary}", file=out)
    if outcome.prediction is not None:
        print(f"capacity model (a priori, same load and faults): {outcome.prediction}", file=out)
    print(f"run folder: {outcome.run_dir}", file=out)
    print(f"report: {outcome.run_dir / 'report.html'}", file=out)
    if outcome.exit_code != 0:
        print(f"exit {outcome.exit_code}; replay with: {replay}", file=out)
    return outcome.exit_code
