"""Facts: the derived tables several checkers share (paired attempts, body groups, journal keys), computed once.

Why a shared, lazy object: pairing invokes with completions and hashing bodies
are the costly steps on a 10^7-op history; each checker asks only for what it
needs, each fact is computed once per history, and a fact that fails to compute
fails only the checkers that asked for it (they turn the crash into UNKNOWN).

Identities are integers: `ev` is an event id's code in one dictionary shared
by the ops, the journal, the lines and the dead letters (Arrow's
dictionary_encode, several times faster than hashing 10^7 strings); `body` is a
64-bit hash of an event's code with its body (key, accounts, amount, currency),
whose low-cardinality columns are hashed once per distinct value. Integer keys
make every group-by cheap; the chance of two bodies of one history sharing a
hash is below 10^-5 at 10^7 events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from harness.checkers.verdict import EVIDENCE_OPS_MAX
from harness.history.schema import NEMESIS, History, OpF, OpType

__all__ = [
    "Facts",
    "hash_column",
    "body_hash",
    "event_codes",
    "plain",
    "DONE_NONE",
    "DONE_OK",
    "DONE_FAIL",
    "DONE_INFO",
    "BODY_FIELDS",
]

BODY_FIELDS = ("key", "debit_account", "credit_account", "amount_minor", "currency")
# How an attempt ended, as small integers so that masks are cheap.
DONE_NONE, DONE_OK, DONE_FAIL, DONE_INFO = 0, 1, 2, 3
_MIX = np.uint64(0x100000001B3)


def hash_column(series: pd.Series) -> np.ndarray:
    """A uint64 per value, equal for equal values whatever the frame (NA hashes alike).

    Distinct values are hashed once (categorize): meant for low-cardinality columns
    such as accounts and currencies; event ids go through event_codes instead.
    """
    return pd.util.hash_pandas_object(series, index=False, categorize=True).to_numpy()


def event_codes(columns: Sequence[pd.Series]) -> list[np.ndarray]:
    """One integer code per value, shared across all the given columns (NA -> -1).

    The columns' Arrow chunks are encoded as one chunked array, whose dictionary
    Arrow unifies across chunks: no copy of the strings is made.
    """
    chunks_of = [_arrow_chunks(c) for c in columns]
    chunks = [chunk for col in chunks_of for chunk in col]
    if sum(len(chunk) for chunk in chunks) == 0:
        return [np.empty(0, dtype=np.int64) for _ in columns]
    if len({chunk.type for chunk in chunks}) > 1:
        chunks = [chunk.cast(pa.large_string()) for chunk in chunks]
    encoded = pc.dictionary_encode(pa.chunked_array(chunks))
    # Split by lengths, not by chunks: Arrow may drop or merge empty chunks.
    codes = np.concatenate(
        [chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64) for chunk in encoded.chunks]
    )
    ends = np.cumsum([sum(len(chunk) for chunk in col) for col in chunks_of])
    return np.split(codes, ends[:-1])


def _arrow_chunks(series: pd.Series) -> list:
    """The column's Arrow string chunks (pandas may hold a column in several chunks after a concat)."""
    if not (isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow"):
        series = series.astype("string[pyarrow]")
    array = pa.array(series.array)
    return list(array.chunks) if isinstance(array, pa.ChunkedArray) else [array]


def body_hash(frame: pd.DataFrame, ev: np.ndarray) -> np.ndarray:
    """Hash of (event code, body) per row; ops and journal rows with the same values hash alike."""
    h = ev.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for name in BODY_FIELDS:
            column = frame[name].astype("Int64") if name == "amount_minor" else frame[name].astype("string")
            h = (h * _MIX) ^ hash_column(column)
    return h


class Facts:
    """Derived tables of one history. Attributes are computed on first use."""

    def __init__(self, history: History) -> None:
        self.history = history

    # -- identities --------------------------------------------------------------------

    @cached_property
    def client_masks(self) -> tuple:
        """(client, invoke) row masks of ops, computed once: string comparisons cost on 10^7 rows."""
        ops = self.history.ops
        client = (ops["process"] != NEMESIS).to_numpy(dtype=bool, na_value=False)
        invoke = (ops["type"] == OpType.INVOKE.value).to_numpy(dtype=bool, na_value=False)
        return client, invoke

    @cached_property
    def codes(self) -> Mapping[str, np.ndarray]:
        """Event codes of client invokes, journal rows, lines and dead letters, in one code space
        (codes_count of them)."""
        client, invoke = self.client_masks
        columns = {"invokes": self.history.ops.loc[client & invoke, "event_id"]}
        observation = self.history.observation
        if observation is not None:
            columns.update(
                journal=observation.journal["event_id"],
                lines=observation.lines["event_id"],
                dead_letters=observation.dead_letters["event_id"],
            )
        codes = dict(zip(columns, event_codes(list(columns.values()))))
        self.codes_count = int(max((c.max() for c in codes.values() if len(c)), default=-1)) + 1
        return codes

    def has_code(self, values: np.ndarray, members: np.ndarray) -> np.ndarray:
        """For each event code in values: is it among members? (A lookup table: codes are dense.)"""
        codes = self.codes  # noqa: F841 - sets codes_count
        table = np.zeros(self.codes_count + 1, dtype=bool)
        members = np.asarray(members)
        table[members[members >= 0]] = True
        values = np.asarray(values)
        return table[np.where(values >= 0, values, self.codes_count)]

    # -- client attempts ---------------------------------------------------------------

    @cached_property
    def attempts(self) -> pd.DataFrame:
        """One row per client invoke (submit and status), with its completion (if any) beside it.

        Columns: op_id, row (position among client invokes), submit (bool), ev, invoke_s,
        intended_s, attempt, done (DONE_*), done_s, status_code (float, NaN when none), error,
        retry_after_s, latency_ms, value. A completion whose op_id has no invoke is counted in
        `orphan_completions` and left out.
        """
        ops = self.history.ops
        client, is_invoke = self.client_masks
        self._invoke_rows = np.flatnonzero(client & is_invoke)
        inv = ops.loc[client & is_invoke, ["op_id", "f", "time_s", "intended_time_s", "attempt"]]
        inv = inv.assign(row=np.arange(len(inv)))  # position among client invokes (codes["invokes"])
        comp = ops.loc[
            client & ~is_invoke,
            ["op_id", "type", "time_s", "status_code", "error", "retry_after_s", "latency_ms", "value"],
        ]
        comp = comp.drop_duplicates("op_id", keep="first").reset_index(drop=True)
        inv = inv.drop_duplicates("op_id", keep="first")
        position = pd.Index(comp["op_id"].to_numpy()).get_indexer(inv["op_id"].to_numpy())
        has = position >= 0
        self.orphan_completions = int(len(comp) - has.sum())

        def completed(column: str) -> pd.Series:
            """comp[column] beside each invoke; NA where the invoke has no completion."""
            return pd.Series(comp[column].array.take(position, allow_fill=True))

        def floats(column: str) -> np.ndarray:
            return completed(column).to_numpy(dtype="float64", na_value=np.nan)

        done = np.full(len(inv), DONE_NONE, dtype=np.int8)
        for kind, code in (
            () if len(comp) == 0 else ((OpType.OK, DONE_OK), (OpType.FAIL, DONE_FAIL), (OpType.INFO, DONE_INFO))
        ):
            is_kind = (comp["type"] == kind.value).to_numpy(dtype=bool, na_value=False)
            done[has & is_kind[np.where(has, position, 0)]] = code
        frame = pd.DataFrame(
            {
                "op_id": inv["op_id"].to_numpy(),
                "row": inv["row"].to_numpy(),
                "submit": (inv["f"] == OpF.SUBMIT.value).to_numpy(dtype=bool, na_value=False),
                "ev": self.codes["invokes"][inv["row"].to_numpy()],
                "invoke_s": inv["time_s"].to_numpy(dtype="float64"),
                "intended_s": inv["intended_time_s"].to_numpy(dtype="float64", na_value=np.nan),
                "attempt": inv["attempt"].to_numpy(dtype="float64", na_value=np.nan),
                "done": done,
                "done_s": floats("time_s"),
                "status_code": floats("status_code"),
                "error": completed("error"),
                "retry_after_s": floats("retry_after_s"),
                "latency_ms": floats("latency_ms"),
                "value": completed("value"),
            }
        )
        # A completion without latency_ms still has a latency: its time minus the invoke's.
        missing = np.isnan(frame["latency_ms"].to_numpy()) & (done != DONE_NONE)
        if missing.any():
            latency = frame["latency_ms"].to_numpy().copy()
            latency[missing] = (frame["done_s"].to_numpy()[missing] - frame["invoke_s"].to_numpy()[missing]) * 1000.0
            frame["latency_ms"] = latency
        return frame

    @cached_property
    def submits(self) -> pd.DataFrame:
        """Submit attempts with their body: attempts columns plus body, valid_body, duplicate, key."""
        attempts = self.attempts
        sub = attempts.loc[attempts["submit"].to_numpy()].reset_index(drop=True)
        rows = self._invoke_rows[sub["row"].to_numpy()]
        inv = self.history.ops.iloc[rows][list(BODY_FIELDS) + ["valid_body", "duplicate"]]
        sub["body"] = body_hash(inv.reset_index(drop=True), sub["ev"].to_numpy())
        sub["valid_body"] = inv["valid_body"].to_numpy(dtype=bool, na_value=True)
        sub["duplicate"] = inv["duplicate"].to_numpy(dtype=bool, na_value=False)
        sub["key"] = inv["key"].reset_index(drop=True)
        return sub

    @cached_property
    def bodies(self) -> pd.DataFrame:
        """One row per submitted (event id, body), indexed by body hash.

        acked: some attempt ended ok; indeterminate: none ok, some info or unanswered;
        failed: every attempt ended fail (nothing happened, definitely); valid: no attempt
        was marked valid_body False; ev: the event code.
        """
        sub = self.submits
        done = sub["done"].to_numpy()
        frame = pd.DataFrame(
            {
                "body": sub["body"].to_numpy(),
                "ev": sub["ev"].to_numpy(),
                "ok": done == DONE_OK,
                "open": (done == DONE_INFO) | (done == DONE_NONE),
                "valid": sub["valid_body"].to_numpy(),
            }
        )
        frame = frame.loc[frame["ev"].to_numpy() >= 0]  # a submit without an event id ties to nothing
        grouped = frame.groupby("body", sort=False).agg(
            ev=("ev", "first"), acked=("ok", "any"), opened=("open", "any"), valid=("valid", "all")
        )
        grouped["indeterminate"] = ~grouped["acked"] & grouped["opened"]
        grouped["failed"] = ~grouped["acked"] & ~grouped["opened"]
        return grouped.drop(columns="opened")

    @cached_property
    def events(self) -> pd.DataFrame:
        """One row per submitted event id (indexed by its code ev): row (an invoke of it, for event_id_at),
        first_invoke_s, first_ok_s (NaN if never ok), accepted (some attempt ok or indeterminate: the API
        may have enqueued it), first_effective_s (the first invoke of an attempt that could have taken
        effect: ok, info or unanswered; NaN when every attempt definitely failed)."""
        sub = self.submits
        done = sub["done"].to_numpy()
        ok_s = np.where(done == DONE_OK, sub["done_s"].to_numpy(), np.nan)
        invoke_s = sub["invoke_s"].to_numpy()
        frame = pd.DataFrame(
            {
                "ev": sub["ev"].to_numpy(),
                "row": sub["row"].to_numpy(),
                "invoke_s": invoke_s,
                "ok_s": ok_s,
                "accepted": done != DONE_FAIL,
                "effective_s": np.where(done != DONE_FAIL, invoke_s, np.nan),
            }
        )
        frame = frame.loc[frame["ev"].to_numpy() >= 0]
        return frame.groupby("ev", sort=False).agg(
            row=("row", "first"),
            first_invoke_s=("invoke_s", "min"),
            first_ok_s=("ok_s", "min"),
            accepted=("accepted", "any"),
            first_effective_s=("effective_s", "min"),
        )

    # -- observation ---------------------------------------------------------------------

    @cached_property
    def journal(self) -> pd.DataFrame:
        """Per journal row (same order as the observation's journal): seq, ev (event code), body (hash)."""
        journal = self.history.observed.journal
        ev = self.codes["journal"]
        return pd.DataFrame({"seq": journal["seq"].to_numpy(dtype="int64"), "ev": ev, "body": body_hash(journal, ev)})

    # -- names for evidence (strings are fetched only for the few events shown) -----------

    def event_id_at(self, rows) -> list:
        """Event ids of client invokes by their row (attempts["row"], events["row"]); None where NA."""
        self.attempts  # noqa: B018 - sets _invoke_rows
        rows = np.asarray(rows, dtype=np.int64)
        values = self.history.ops["event_id"].take(self._invoke_rows[rows])
        return [None if pd.isna(v) else v for v in values]

    def event_ids_of(self, ev) -> list:
        """Event ids of event codes that were submitted (events.index)."""
        return self.event_id_at(self.events["row"].reindex(np.asarray(ev)).to_numpy())

    def rejected_for(self, values: Iterable[str]) -> np.ndarray:
        attempts = self.attempts
        values = sorted(values)
        mask = (~attempts["submit"].to_numpy()) & (attempts["done"].to_numpy() == DONE_OK)
        if not values or not mask.any():
            return np.empty(0, dtype=np.int64)
        chosen = attempts.loc[mask]
        hit = chosen["value"].isin(values).to_numpy(dtype=bool, na_value=False)
        return np.unique(chosen["ev"].to_numpy()[hit])

    # -- client time span --------------------------------------------------------------

    @cached_property
    def history_end_s(self) -> float:
        ops = self.history.ops
        return float(ops["time_s"].max()) if len(ops) else 0.0

    # -- evidence ------------------------------------------------------------------------

    def ops_of(self, event_ids: Iterable[str]) -> Mapping[str, tuple]:
        """Each event id's first EVIDENCE_OPS_MAX ops as plain dicts (NA fields left out)."""
        wanted = [e for e in dict.fromkeys(event_ids) if e is not None]
        if not wanted:
            return {}
        ops = self.history.ops
        picked = ops.loc[ops["event_id"].isin(wanted).to_numpy(dtype=bool, na_value=False)]
        picked = picked.sort_values(["time_s", "index"], kind="stable")
        out: dict = {e: [] for e in wanted}
        for row in picked.to_dict("records"):
            bucket = out[row["event_id"]]
            if len(bucket) < EVIDENCE_OPS_MAX:
                bucket.append(plain(row))
        return {e: tuple(v) for e, v in out.items()}


def plain(row: Mapping) -> dict:
    """A table row as a dict of plain Python values, NA fields left out."""
    out = {}
    for name, value in row.items():
        if value is None or value is pd.NA:
            continue
        if isinstance(value, float) and np.isnan(value):
            continue
        if isinstance(value, np.generic):
            value = value.item()
        out[name] = value
    return out
