"""A pytest plugin: the `ledgerchaos_scenario` fixture runs a scenario on the local stack and returns its result.

Registered as the entry point `pytest11: ledgerchaos = "harness.pytest_plugin"`,
so every pytest run in a project that installs ledgerchaos loads it; that is why
this module imports only the standard library and pytest, and the engine, the
checkers and the report are imported inside the fixture when a test calls it.

    def test_steady_holds(ledgerchaos_scenario):
        result = ledgerchaos_scenario("scenarios/steady.yaml")
        assert result.exit_code == 0, result.explain()
        assert result.verdict("no_double_posting").valid

Each run writes its report folder under `--ledgerchaos-reports DIR` (default: the
test's tmp_path); the session's report folders are listed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ScenarioResult", "ledgerchaos_scenario"]

_REPORTS_KEY = pytest.StashKey[list]()


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario run gave: exit code (0 / 1 / 3), verdicts, run folder, report files and summary."""

    exit_code: int
    verdicts: tuple
    run_dir: Path
    report_html: Path
    summary: Mapping[str, Any] = field(repr=False)
    replay_command: str = ""

    def verdict(self, name: str):
        """The verdict of one checker; KeyError naming the checkers that ran when it did not."""
        for verdict in self.verdicts:
            if verdict.name == name:
                return verdict
        raise KeyError(f"no verdict {name!r}; checkers that ran: {', '.join(v.name for v in self.verdicts) or 'none'}")

    def explain(self) -> str:
        """A few lines for an assertion message: the verdicts that did not hold, the report, the replay."""
        lines = [
            f"ledgerchaos {self.summary.get('scenario')}: {str(self.summary.get('outcome')).upper()} "
            f"(exit {self.exit_code})"
        ]
        lines += [f"  {note}" for note in self.summary.get("notes") or ()]
        lines += [f"  {v.validity.value.upper()} {v.name}: {v.summary}" for v in self.verdicts if not v.valid]
        lines += [f"  report: {self.report_html}", f"  replay: {self.replay_command}"]
        return "\n".join(lines)


def pytest_addoption(parser) -> None:
    group = parser.getgroup("ledgerchaos")
    group.addoption(
        "--ledgerchaos-reports",
        default=None,
        metavar="DIR",
        help="where ledgerchaos_scenario writes run folders (default: each test's tmp_path)",
    )


def pytest_configure(config) -> None:
    config.stash[_REPORTS_KEY] = []


@pytest.fixture()
def ledgerchaos_scenario(request, tmp_path):
    """A function: (scenario file path or mapping, seed=None, run_id=None) -> ScenarioResult."""
    option = request.config.getoption("--ledgerchaos-reports")
    reports_dir = Path(option) if option else tmp_path / "reports"
    written = request.config.stash.get(_REPORTS_KEY, [])

    def run(
        scenario: str | Path | Mapping[str, Any], seed: int | None = None, run_id: str | None = None
    ) -> ScenarioResult:
        from harness.run.engine import RunOptions, run_scenario
        from harness.scenario import load_scenario, scenario_from_mapping

        loaded = (
            scenario_from_mapping(scenario, seed=seed)
            if isinstance(scenario, Mapping)
            else load_scenario(Path(scenario), seed=seed)
        )
        outcome = run_scenario(loaded, RunOptions(reports_dir=reports_dir, run_id=run_id))
        files = outcome.report  # rendered once, by the run's own render phase
        assert files is not None, "run_scenario judges and renders unless told not to"
        written.append(files.report_html)
        return ScenarioResult(
            exit_code=outcome.exit_code,
            verdicts=tuple(outcome.verdicts),
            run_dir=outcome.run_dir,
            report_html=files.report_html,
            summary=files.summary,
            replay_command=files.summary["replay_command"],
        )

    return run


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    written = config.stash.get(_REPORTS_KEY, [])
    if written:
        terminalreporter.section("ledgerchaos reports")
        for path in written:
            terminalreporter.write_line(str(path))
