"""The history format: the tables a run records and the checkers judge.

Why a documented table format rather than Python objects: a stored run can be
re-judged without new load, and a user can produce the same tables from their
own system and judge it with the same checkers (docs/history-format.md).

A history is five things:
- `ops`: one timeline of client ops and nemesis ops (Jepsen's model: an op is
  invoked, then completes ok / fail / info);
- `metrics`: samples scraped from the system under test (long format);
- `observation`: what the ledger held after the drain, read directly from the
  database and the broker (None when it could not be read);
- `meta`: the run's identity, seed, phases and drain outcome.

Times are seconds since the run's t0 on one monotonic clock shared by every
process on the machine (CLOCK_MONOTONIC).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd

__all__ = [
    "OpType",
    "OpF",
    "NEMESIS",
    "OPS_COLUMNS",
    "METRICS_COLUMNS",
    "JOURNAL_COLUMNS",
    "LINES_COLUMNS",
    "BALANCES_COLUMNS",
    "DEAD_LETTERS_COLUMNS",
    "Phase",
    "Gap",
    "RECORDED_TOOLS",
    "RunMeta",
    "Observation",
    "History",
    "empty_frame",
    "conform",
]

HISTORY_FORMAT_VERSION = 1


class OpType(str, enum.Enum):
    """How an op stands: invoked, or completed definitely (ok / fail) or indeterminately (info)."""

    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class OpF(str, enum.Enum):
    """What an op does. Client: submit a posting, or ask for its status.
    Nemesis: a fault starts or stops."""

    SUBMIT = "submit"
    STATUS = "status"
    FAULT_START = "fault_start"
    FAULT_STOP = "fault_stop"


NEMESIS = "nemesis"

# Column → pandas dtype. Nullable dtypes because a completion does not repeat
# the body and a nemesis op has no event.
OPS_COLUMNS: Mapping[str, str] = {
    "index": "int64",  # position on the timeline, 0..n-1, in time order
    "time_s": "float64",  # when the op happened (invoke: actual send time)
    "process": "string",  # "client-<worker>-<user>" or "nemesis"
    "type": "string",  # OpType value
    "f": "string",  # OpF value
    "op_id": "int64",  # pairs an invoke with its completion; unique per attempt
    "event_id": "string",  # the posting's idempotency key (client ops)
    "key": "string",  # ordering key (invoke)
    "debit_account": "string",  # (invoke)
    "credit_account": "string",  # (invoke)
    "amount_minor": "Int64",  # (invoke)
    "currency": "string",  # (invoke)
    "intended_time_s": "float64",  # invoke: when the schedule wanted it sent
    "attempt": "Int64",  # 1 for the first try of an event, 2.. for client retries
    "duplicate": "boolean",  # invoke: a deliberate resubmission of an earlier event
    "valid_body": "boolean",  # invoke: False when the generator sent a bad body on purpose
    "status_code": "Int64",  # completion: HTTP status, <NA> when none came
    "latency_ms": "float64",  # completion: time since the invoke
    "error": "string",  # fail / info: http_429, http_503, timeout, connection_reset...
    "retry_after_s": "float64",  # completion: the Retry-After header, when given
    "value": "string",  # status ops: the answered status; nemesis: details as JSON; submit invokes: the
    # generator's intent (duplicate, conflict, invalid:<kind>; empty for a new event)
    "fault_id": "Int64",  # nemesis: pairs a fault's start with its stop
    "fault": "string",  # nemesis: human description of the fault
}

METRICS_COLUMNS: Mapping[str, str] = {
    "time_s": "float64",
    "metric": "string",  # e.g. ledger_backlog_events
    "partition": "Int64",  # <NA> for system-wide metrics
    "value": "float64",
    "round": "Int64",  # the sampling round (samples of one round belong together); <NA> when not recorded
}

JOURNAL_COLUMNS: Mapping[str, str] = {
    "seq": "int64",  # apply order (a database sequence): larger was applied later
    "event_id": "string",
    "key": "string",
    "debit_account": "string",
    "credit_account": "string",
    "amount_minor": "int64",
    "currency": "string",
    "applied_s": "float64",  # when it was applied, seconds on the run's clock (<NA> when unknown)
}

LINES_COLUMNS: Mapping[str, str] = {
    "event_id": "string",
    "account": "string",
    "currency": "string",
    "amount_minor": "int64",  # signed: debit negative, credit positive
}

BALANCES_COLUMNS: Mapping[str, str] = {
    "account": "string",
    "currency": "string",
    "balance_minor": "int64",
}

DEAD_LETTERS_COLUMNS: Mapping[str, str] = {
    "event_id": "string",
    "reason": "string",
    "attempts": "Int64",
}


# Columns without which a table means nothing; every other column may be absent (filled with NA).
_REQUIRED = frozenset({"index", "time_s", "op_id", "seq", "amount_minor", "balance_minor", "value"})


def empty_frame(columns: Mapping[str, str]) -> pd.DataFrame:
    """An empty table with the given columns and dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def conform(frame: pd.DataFrame, columns: Mapping[str, str], table: str) -> pd.DataFrame:
    """Return frame with exactly these columns in order and dtypes; missing optional columns filled with NA.

    Raises ValueError naming the table and column when a value cannot take its type,
    so that a user's hand-made history fails with a sentence, not a numpy trace.
    """
    out = {}
    for name, dtype in columns.items():
        if name in frame.columns:
            try:
                out[name] = frame[name].astype(cast(Any, dtype))  # pandas-stubs accept only literal dtype names
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{table}.{name}: cannot be read as {dtype}: {exc}") from exc
            _refuse_lossy(frame[name], out[name], f"{table}.{name}")
        elif dtype in ("int64", "float64") and name in _REQUIRED:
            raise ValueError(f"{table}.{name}: missing; this column is required")
        else:
            out[name] = pd.Series(index=frame.index, dtype=dtype)
    return pd.DataFrame(out).reset_index(drop=True)


def _refuse_lossy(source: pd.Series, converted: pd.Series, where: str) -> None:
    """Raise when an integer column was given fractions: astype truncates 12.5 to 12 without a word.

    A checker judging truncated amounts judges data it never read; a refusal is the honest answer.
    """
    if not pd.api.types.is_integer_dtype(converted.dtype) or pd.api.types.is_integer_dtype(source.dtype):
        return
    numbers = pd.to_numeric(source, errors="coerce")
    lossy = numbers.notna() & (numbers != converted.astype("float64"))
    if lossy.any():
        row = int(lossy.to_numpy().nonzero()[0][0])
        raise ValueError(
            f"{where}: row {row} holds {source.iloc[row]}, not a whole number; this column is an integer "
            "(amounts in minor units: write 1250 for 12.50)"
        )


@dataclass(frozen=True)
class Phase:
    """A named span of the run: warmup, baseline, fault, recovery, drain."""

    name: str
    start_s: float
    end_s: float


class Gap(str, enum.Enum):
    """Why a run's history is partial. A run with no gap is complete; one with any gap exits 3.

    Typed, not read out of the notes' text: a checker, the report and the gate ask for these.
    """

    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM reached the harness
    RUN_FAILED = "run_failed"  # an error stopped the run after the stack was up
    LOAD_INCOMPLETE = "load_incomplete"  # the load did not hand over a complete record of its ops
    NOT_OBSERVED = "not_observed"  # the ledger was not read after the drain


# The tools whose versions a run records in meta.extra["versions"], when it runs (the report shows
# these, never versions found on the machine that renders it).
RECORDED_TOOLS = ("ledgerchaos", "python", "redis", "postgresql", "toxiproxy", "locust", "constraints")


@dataclass(frozen=True)
class RunMeta:
    """Who the run was and how it went, apart from the tables."""

    run_id: str
    seed: int
    scenario: str = ""
    complete: bool = True  # False when the run stopped early (partial history)
    phases: tuple = ()  # of Phase
    load_start_s: float = 0.0  # fault schedule and load profile times are relative to this
    drain_completed: bool | None = None  # None: no drain was attempted
    drain_duration_s: float | None = None
    backlog_left: int | None = None
    notes: tuple = ()  # free-form lines for people: what happened, in words
    extra: Mapping[str, Any] = field(default_factory=dict)
    gaps: tuple[Gap, ...] = ()  # why the history is partial (complete is False when there is any)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gaps", tuple(Gap(g) for g in self.gaps))
        if self.gaps and self.complete:
            raise ValueError(f"a run with gaps ({', '.join(g.value for g in self.gaps)}) is not complete")

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        data["gaps"] = [g.value for g in self.gaps]
        data["phases"] = [p.__dict__ for p in self.phases]
        data["notes"] = list(self.notes)
        data["extra"] = dict(self.extra)
        data["format_version"] = HISTORY_FORMAT_VERSION
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunMeta:
        data = dict(data)
        data.pop("format_version", None)
        data["phases"] = tuple(Phase(**p) for p in data.get("phases", ()))
        data["notes"] = tuple(data.get("notes", ()))
        data["gaps"] = tuple(data.get("gaps", ()))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Observation:
    """The ledger after the drain, read directly (not through the proxies)."""

    journal: pd.DataFrame
    lines: pd.DataFrame
    balances: pd.DataFrame
    dead_letters: pd.DataFrame


@dataclass(frozen=True)
class History:
    """A whole run as data. Checkers take this and nothing else."""

    ops: pd.DataFrame
    metrics: pd.DataFrame
    observation: Observation | None
    meta: RunMeta

    @property
    def observed(self) -> Observation:
        """The observation, for code that has already made sure there is one (a checker after
        `needs_observation`); a history without one is a bug in the caller, said plainly."""
        if self.observation is None:
            raise ValueError("this history holds no observation of the ledger: ask needs_observation() first")
        return self.observation
