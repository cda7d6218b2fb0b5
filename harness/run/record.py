"""What the record phase of a run hands on: an immutable run record.

Why a value: predicting, judging and rendering are functions of what was
recorded (and of the run folder it was written to), never of the live run;
`ledgerchaos check` and `ledgerchaos report` start from the same folder later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.history.schema import Gap, History
from harness.scenario import Scenario

__all__ = ["DrainOutcome", "RunRecord"]


@dataclass(frozen=True)
class DrainOutcome:
    """The bounded wait, after the load, until no event is waiting or in flight."""

    completed: bool
    duration_s: float
    bound_s: float
    backlog_left: int | None  # None: the backlog could not be read at the end


@dataclass(frozen=True)
class RunRecord:
    """One recorded run: the scenario that ran, its history (saved in run_dir) and what it ran on."""

    run_dir: Path
    scenario: Scenario
    history: History
    versions: Mapping[str, str | None] = field(default_factory=dict)
    drain: DrainOutcome | None = None  # None: the run stopped before its drain

    @property
    def complete(self) -> bool:
        return self.history.meta.complete

    @property
    def gaps(self) -> tuple[Gap, ...]:
        return self.history.meta.gaps

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self.history.meta.notes)
