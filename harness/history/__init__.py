"""History: the run's timeline of ops, metric samples and final observation."""

from harness.history.schema import (
    BALANCES_COLUMNS,
    DEAD_LETTERS_COLUMNS,
    JOURNAL_COLUMNS,
    LINES_COLUMNS,
    METRICS_COLUMNS,
    NEMESIS,
    OPS_COLUMNS,
    History,
    Observation,
    OpF,
    OpType,
    Phase,
    RunMeta,
    conform,
    empty_frame,
)

__all__ = [
    "BALANCES_COLUMNS",
    "DEAD_LETTERS_COLUMNS",
    "JOURNAL_COLUMNS",
    "LINES_COLUMNS",
    "METRICS_COLUMNS",
    "NEMESIS",
    "OPS_COLUMNS",
    "History",
    "Observation",
    "OpF",
    "OpType",
    "Phase",
    "RunMeta",
    "conform",
    "empty_frame",
]
