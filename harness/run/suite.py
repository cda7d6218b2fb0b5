"""`ledgerchaos suite SCENARIOS_DIR`: every scenario in a folder, run and reported, one JUnit file and an index page.

Why validate all first: a typo in the last scenario must not be found after
twenty minutes of load; every file is checked before anything starts (exit 2).
Runs go one after another (they share the machine's cores and ports). The
suite's exit code is the worst of its runs (3 could not run > 1 violated or
unknown > 0); the combined JUnit file and the index are written even when the
suite is interrupted, for the runs that finished.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from harness.errors import LedgerchaosError, ScenarioError, UsageError

__all__ = ["suite_command", "scenario_files", "SCENARIOS_MAX"]

SCENARIOS_MAX = 200
SCENARIO_PATTERNS = ("*.yaml", "*.yml")


def scenario_files(scenarios_dir: Path) -> list[Path]:
    """The folder's scenario files, sorted by name; subfolders (e.g. plans/) are not searched."""
    scenarios_dir = Path(scenarios_dir)
    if not scenarios_dir.is_dir():
        raise UsageError(
            f"{scenarios_dir}: no such folder; give the folder holding the scenario files, e.g. scenarios/"
        )
    files = sorted({p for pattern in SCENARIO_PATTERNS for p in scenarios_dir.glob(pattern) if p.is_file()})
    if not files:
        raise UsageError(f"{scenarios_dir}: holds no *.yaml scenario file")
    if len(files) > SCENARIOS_MAX:
        raise UsageError(f"{scenarios_dir}: {len(files)} scenario files, more than {SCENARIOS_MAX}; split the folder")
    return files


def suite_command(
    scenarios_dir: Path, junit: Path | None, reports_dir: Path, out: TextIO | None = None, now: datetime | None = None
) -> int:
    """Validate every scenario (exit 2 on any problem, nothing run), run each and write its report, then the
    combined JUnit (reports/suite-<time>/junit.xml, and `junit` when given) and index.html. Returns the worst
    exit code of the runs. out: where to print (None: sys.stdout at call time)."""
    out = out if out is not None else sys.stdout
    from harness.scenario import load_scenario

    files = scenario_files(scenarios_dir)
    scenarios, problems = [], []
    for path in files:
        try:
            scenarios.append((path, load_scenario(path)))
        except ScenarioError as exc:
            problems.append(str(exc))
    if problems:
        for problem in problems:
            print(f"ledgerchaos: {problem}", file=out)
        print(f"suite: {len(problems)} of {len(files)} scenario files are wrong; nothing was run (exit 2)", file=out)
        return UsageError.exit_code
    names = [s.name for _p, s in scenarios]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise UsageError(
            f"{scenarios_dir}: scenario name(s) {', '.join(twice)} used by more than one file; "
            "the JUnit classname needs each name once"
        )

    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    suite_dir = Path(reports_dir) / f"suite-{stamp}"
    suite_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    try:
        for number, (path, scenario) in enumerate(scenarios, start=1):
            print(f"[{number}/{len(scenarios)}] {scenario.name} ({path}), seed {scenario.seed}", file=out, flush=True)
            entry = _run_one(path, scenario, Path(reports_dir))
            entries.append(entry)
            summary = entry["summary"]
            print(
                f"    {summary['outcome'].upper()} exit {summary['exit_code']}"
                + (f": {entry['report_html']}" if entry["report_html"] else f": {'; '.join(summary['notes'])}"),
                file=out,
                flush=True,
            )
    finally:
        code = max((e["summary"]["exit_code"] for e in entries), default=0)
        _write_suite_files(suite_dir, entries, junit, code, stamp)
    print(f"suite: {len(entries)} runs, exit {code}; index: {suite_dir / 'index.html'}", file=out)
    if junit is not None:
        print(f"junit: {junit}", file=out)
    return code


def _run_one(path: Path, scenario, reports_dir: Path) -> dict:
    from harness.run.engine import RunOptions, run_scenario

    try:
        outcome = run_scenario(scenario, RunOptions(reports_dir=reports_dir))
    except LedgerchaosError as exc:  # the stack could not start: no history, exit 3 for this run
        return {
            "scenario": scenario.name,
            "file": str(path),
            "report_html": None,
            "summary": _failed_summary(scenario, path, exc),
        }
    files = outcome.report  # rendered once, by the run's own render phase
    assert files is not None, "run_scenario judges and renders unless told not to"
    summary = dict(files.summary)
    return {"scenario": scenario.name, "file": str(path), "report_html": files.report_html, "summary": summary}


def _failed_summary(scenario, path: Path, exc: LedgerchaosError) -> dict:
    from harness.run.command import replay_command

    return {
        "scenario": scenario.name,
        "run_id": "",
        "seed": scenario.seed,
        "complete": False,
        "notes": [f"the run could not start: {exc}"],
        "outcome": "incomplete",
        "exit_code": exc.exit_code,
        "verdicts": [],
        "verdict_counts": {},
        "replay_command": replay_command(path, scenario.seed),
        "phases": [],
    }


def _write_suite_files(suite_dir: Path, entries: list[dict], junit: Path | None, code: int, stamp: str) -> None:
    from harness.files import write_bytes_atomic, write_text_atomic
    from harness.report.index import render_index
    from harness.report.junit import junit_xml

    document = junit_xml([e["summary"] for e in entries], name=f"ledgerchaos suite {stamp}")
    write_bytes_atomic(suite_dir / "junit.xml", document)
    if junit is not None:
        Path(junit).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(Path(junit), document)
    write_text_atomic(suite_dir / "index.html", render_index(suite_dir, entries, f"ledgerchaos suite {stamp}", code))
