"""Store a History in a run folder and read it back, validated, with errors that name the file and column.

Why files a person can open: a stored run is re-judged without new load
(`ledgerchaos check RUN_DIR`), and a user can write the same files from their
own service (docs/history-format.md). Layout of a run folder:

    history.parquet                  ops (OPS_COLUMNS)
    metrics.csv                      metric samples (METRICS_COLUMNS)
    observation/journal.parquet      the ledger after the drain (absent when not observed)
    observation/lines.parquet
    observation/balances.parquet
    observation/dead_letters.parquet
    meta.json                        RunMeta

Every file is written to a temporary name in the same folder, flushed to disk
and renamed over the old one, so that a crash leaves either the old file or the
new one, never half of one.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import UsageError
from harness.files import fsync_dir, write_atomic
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
    RunMeta,
    conform,
    empty_frame,
)

__all__ = [
    "save_history",
    "load_history",
    "ops_from_records",
    "OPS_FILE",
    "METRICS_FILE",
    "META_FILE",
    "OBSERVATION_DIR",
    "OBSERVATION_FILES",
    "META_BYTES_MAX",
]

OPS_FILE = "history.parquet"
METRICS_FILE = "metrics.csv"
META_FILE = "meta.json"
OBSERVATION_DIR = "observation"
# Observation attribute -> (file name, columns).
OBSERVATION_FILES: Mapping[str, tuple] = {
    "journal": ("journal.parquet", JOURNAL_COLUMNS),
    "lines": ("lines.parquet", LINES_COLUMNS),
    "balances": ("balances.parquet", BALANCES_COLUMNS),
    "dead_letters": ("dead_letters.parquet", DEAD_LETTERS_COLUMNS),
}
# meta.json is a few kilobytes; a huge one is not ours and must not be parsed into memory.
META_BYTES_MAX = 10_000_000

# Columns that must hold a value in every row: a checker cannot place an op without them.
_OPS_REQUIRED = ("time_s", "process", "type", "f")
_OBSERVATION_REQUIRED: Mapping[str, tuple] = {
    "journal": ("event_id",),
    "lines": ("event_id", "account", "currency"),
    "balances": ("account", "currency"),
    "dead_letters": ("event_id",),
}


# -- writing -------------------------------------------------------------------------------


def _write_parquet(frame: pd.DataFrame, path: str) -> None:
    frame.to_parquet(path, index=False)


def save_history(run_dir: Path, history: History) -> None:
    """Write history into run_dir (created if needed), each file atomically.

    The tables are conformed first, so what is written is exactly what
    load_history returns. Without an observation, an old observation/ folder
    is removed: a run folder never mixes two runs.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ops = _conform_any(history.ops, OPS_COLUMNS, "ops")
    write_atomic(run_dir / OPS_FILE, partial(_write_parquet, ops))
    metrics = _conform_any(history.metrics, METRICS_COLUMNS, "metrics")
    write_atomic(run_dir / METRICS_FILE, lambda p: metrics.to_csv(p, index=False))
    observation_dir = run_dir / OBSERVATION_DIR
    if history.observation is None:
        if observation_dir.is_dir():
            for file_name, _columns in OBSERVATION_FILES.values():
                (observation_dir / file_name).unlink(missing_ok=True)
            shutil.rmtree(observation_dir, ignore_errors=True)
    else:
        observation_dir.mkdir(exist_ok=True)
        for name, (file_name, columns) in OBSERVATION_FILES.items():
            frame = _conform_any(getattr(history.observation, name), columns, name)
            write_atomic(observation_dir / file_name, partial(_write_parquet, frame))
        fsync_dir(observation_dir)
    text = json.dumps(history.meta.to_json(), indent=2, sort_keys=True, default=str)
    write_atomic(run_dir / META_FILE, lambda p: Path(p).write_text(text, encoding="utf-8"))
    fsync_dir(run_dir)


def _conform_any(frame: pd.DataFrame, columns: Mapping[str, str], table: str) -> pd.DataFrame:
    """conform, except that a frame with no columns at all (pd.DataFrame()) is an empty table."""
    if len(frame.columns) == 0 and len(frame) == 0:
        return empty_frame(columns)
    return conform(frame, columns, table)


# -- reading -------------------------------------------------------------------------------


def load_history(run_dir: Path) -> History:
    """Read a run folder written by save_history (or by hand, docs/history-format.md).

    Raises UsageError with a sentence naming the file and the column when a file
    is missing, unreadable, or holds a value its column cannot take.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder (expected {OPS_FILE}, {METRICS_FILE}, {META_FILE} inside)")
    ops = _validated_ops(_read_parquet(run_dir / OPS_FILE), run_dir / OPS_FILE)
    metrics = _read_metrics(run_dir / METRICS_FILE)
    observation = _read_observation(run_dir / OBSERVATION_DIR)
    meta = _read_meta(run_dir / META_FILE)
    return History(ops=ops, metrics=metrics, observation=observation, meta=meta)


# Arrow types read straight into the schema's pandas dtypes (strings stay in Arrow memory).
_ARROW_TO_PANDAS = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _read_parquet(path: Path) -> pd.DataFrame:
    """One column at a time: the decoding buffers of a 10^7-row file never exist for all columns at once."""
    if not path.is_file():
        raise UsageError(f"{path}: missing; a run folder needs it (see docs/history-format.md)")
    try:
        source = pq.ParquetFile(path)
        columns = {}
        for name in source.schema_arrow.names:
            table = source.read(columns=[name])
            columns[name] = table.to_pandas(
                types_mapper=_ARROW_TO_PANDAS.get, self_destruct=True, ignore_metadata=True
            )[name]
            del table
        return pd.DataFrame(columns, copy=False)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UsageError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None


def _conformed(frame: pd.DataFrame, columns: Mapping[str, str], path: Path, required: Iterable[str]) -> pd.DataFrame:
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise UsageError(
            f"{path}: column {missing[0]!r} is missing; it is required "
            f"(columns: {', '.join(columns)}; see docs/history-format.md)"
        )
    try:
        out = conform(frame, columns, "\0")
    except ValueError as exc:
        # conform says "<table>.<column>: ..."; here the file is the table.
        text = str(exc)
        if text.startswith("\0."):
            name, _, rest = text[2:].partition(": ")
            text = f"column {name!r} {rest}"
        raise UsageError(f"{path}: {text}; fix the file (see docs/history-format.md)") from None
    for name in required:
        nulls = out[name].isna()
        if nulls.any():
            row = int(np.flatnonzero(nulls.to_numpy())[0])
            raise UsageError(f"{path}: column {name!r} is empty in row {row}; every row needs a value there")
    return out


def _validated_ops(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if "index" not in frame.columns:
        raise UsageError(
            f"{path}: column 'index' is missing; number the ops 0..n-1 in time order "
            "(harness.history.store.ops_from_records does it)"
        )
    ops = _conformed(frame, OPS_COLUMNS, path, ("index", "op_id") + _OPS_REQUIRED)
    _check_values(ops, "type", {t.value for t in OpType}, path)
    _check_values(ops, "f", {f.value for f in OpF}, path)
    times = ops["time_s"].to_numpy()
    if not np.isfinite(times).all():
        row = int(np.flatnonzero(~np.isfinite(times))[0])
        raise UsageError(f"{path}: column 'time_s' holds {times[row]} in row {row}; times are finite seconds since t0")
    _check_op_pairs(ops, path)
    return ops


def _check_op_pairs(ops: pd.DataFrame, path: Path) -> None:
    """A client op_id is one invoke, then at most one completion: anything else would be judged wrongly.

    Two invokes under one op_id would pair one of them with nothing (a checker then says the event was
    never submitted while its invoke is in the file); a completion without an invoke has no body.
    Nemesis ops (fault starts and stops) are single records and are not paired.
    """
    client = ops.loc[(ops["process"] != NEMESIS).fillna(True).to_numpy(), ["index", "op_id", "type"]]
    if not len(client):
        return
    invoke = (client["type"] == OpType.INVOKE.value).to_numpy()
    per_op = pd.DataFrame({"op_id": client["op_id"].to_numpy(), "invoke": invoke, "done": ~invoke})
    counts = per_op.groupby("op_id", sort=False).agg(invokes=("invoke", "sum"), completions=("done", "sum"))
    for column, limit, problem, fix in (
        ("invokes", 1, "is invoked {n} times", "give each request its own op_id"),
        ("completions", 1, "is completed {n} times", "an op completes once: ok, fail or info"),
    ):
        over = counts[counts[column] > limit]
        if len(over):
            op_id, n = over.index[0], int(over[column].iloc[0])
            row = int(np.flatnonzero((client["op_id"] == op_id).to_numpy())[-1])
            raise UsageError(
                f"{path}: op_id {op_id} {problem.format(n=n)} (row {int(client['index'].iloc[row])}); {fix}"
            )
    orphans = counts[(counts["invokes"] == 0) & (counts["completions"] > 0)]
    if len(orphans):
        raise UsageError(
            f"{path}: op_id {orphans.index[0]} completes without an invoke; write its invoke first "
            "(an op is invoked, then completes)"
        )
    first = client.assign(invoke=invoke).groupby(["op_id", "invoke"], sort=False)["index"].min().unstack()
    if True in first.columns and False in first.columns:
        early = first[first[False] < first[True]]
        if len(early):
            raise UsageError(
                f"{path}: op_id {early.index[0]} completes (row {int(early[False].iloc[0])}) before its invoke "
                f"(row {int(early[True].iloc[0])}); ops are in time order, invoke first"
            )


def _check_values(frame: pd.DataFrame, column: str, allowed: set, path: Path) -> None:
    bad = ~frame[column].isin(allowed)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UsageError(
            f"{path}: column {column!r} holds {frame[column].iloc[row]!r} in row {row}; "
            f"use one of {', '.join(sorted(allowed))}"
        )


def _read_metrics(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(
            f"{path}: missing; write an empty file with the header "
            f"'{','.join(METRICS_COLUMNS)}' when there are no samples"
        )
    try:
        frame = pd.read_csv(
            path,
            dtype={"metric": "string", "partition": "Int64", "round": "Int64"},
            keep_default_na=False,
            na_values={"partition": [""], "value": ["", "NaN", "nan"], "time_s": [""], "round": [""]},
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable metrics CSV ({exc})") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: empty; it needs at least the header '{','.join(METRICS_COLUMNS)}'") from None
    return _conformed(frame, METRICS_COLUMNS, path, ("time_s", "metric", "value"))


def _read_observation(folder: Path):
    if not folder.is_dir():
        return None
    tables = {}
    for name, (file_name, columns) in OBSERVATION_FILES.items():
        path = folder / file_name
        tables[name] = _conformed(_read_parquet(path), columns, path, _OBSERVATION_REQUIRED[name] + ())
    return Observation(**tables)


def _read_meta(path: Path) -> RunMeta:
    if not path.is_file():
        raise UsageError(f'{path}: missing; it needs at least {{"run_id": "...", "seed": 0}}')
    if path.stat().st_size > META_BYTES_MAX:
        raise UsageError(f"{path}: larger than {META_BYTES_MAX} bytes; meta.json is a short file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must hold a JSON object, got {type(data).__name__}")
    for name in ("run_id", "seed"):
        if name not in data:
            raise UsageError(f"{path}: field {name!r} is missing; it is required")
    try:
        meta = RunMeta.from_json(data)
    except (TypeError, KeyError, ValueError) as exc:
        raise UsageError(f"{path}: field 'phases' must be a list of {{name, start_s, end_s}} ({exc})") from None
    for phase in meta.phases:
        if not (
            isinstance(phase.start_s, (int, float))
            and isinstance(phase.end_s, (int, float))
            and math.isfinite(phase.start_s)
            and phase.start_s <= phase.end_s
        ):
            raise UsageError(
                f"{path}: phase {phase.name!r} has start_s={phase.start_s!r}, end_s={phase.end_s!r}; "
                "both are seconds since t0 with start_s <= end_s"
            )
    return meta


# -- building ------------------------------------------------------------------------------


def ops_from_records(records: Iterable[Mapping]) -> pd.DataFrame:
    """A conformed ops table from dict rows (e.g. JSON lines), sorted by time_s with `index` 0..n-1.

    Keys outside OPS_COLUMNS are dropped; missing keys become NA. At equal times
    ops are ordered by op_id, an invoke before its completion (the sort is stable). A nemesis op without an op_id gets a
    negative one (-1, -2, ...) so that op_id stays a whole number everywhere
    without colliding with the clients' ids.
    Raises ValueError naming the column when a value cannot take its type.
    """
    frame = pd.DataFrame.from_records(list(records))
    if frame.empty:
        return empty_frame(OPS_COLUMNS)
    for name in _OPS_REQUIRED:
        if name not in frame.columns or frame[name].isna().any():
            raise ValueError(f"ops.{name}: every op needs a value (missing in at least one record)")
    if "op_id" not in frame.columns:
        frame["op_id"] = pd.NA
    missing_ids = frame["op_id"].isna().to_numpy()
    if missing_ids.any():
        nemesis = (frame["process"] == "nemesis").to_numpy()
        if (missing_ids & ~nemesis).any():
            row = int(np.flatnonzero(missing_ids & ~nemesis)[0])
            raise ValueError(
                f"ops.op_id: client op in record {row} has no op_id; it pairs an invoke with its completion"
            )
        op_id = frame["op_id"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        op_id[missing_ids] = -np.arange(1, int(missing_ids.sum()) + 1)
        frame["op_id"] = op_id.astype("int64")
    try:
        frame["time_s"] = frame["time_s"].astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ops.time_s: cannot be read as float64: {exc}") from None
    # At equal times: by op_id, an invoke before its completion (records merged from several
    # workers may not be in order).
    completion = (frame["type"] != OpType.INVOKE.value).to_numpy(dtype=np.int8)
    order = np.lexsort((completion, frame["op_id"].to_numpy(dtype="int64"), frame["time_s"].to_numpy()))
    frame = frame.take(order).reset_index(drop=True)
    frame["index"] = np.arange(len(frame), dtype="int64")
    return conform(frame, OPS_COLUMNS, "ops")
