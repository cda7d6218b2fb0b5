"""Write a model run out as a History (ops, metrics, journal): synthetic measured runs for calibration tests.

Why: calibration must be shown to recover known parameters, and the only run
whose true parameters are known is one the model made itself. The history has
the shape a live run records (OPS_COLUMNS, METRICS_COLUMNS, JOURNAL_COLUMNS
plus `committed_s` or `applied_s` when asked), so measured.py reads it with no special case.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.capacity.prediction import Outcome, Prediction
from harness.history.schema import (
    BALANCES_COLUMNS,
    DEAD_LETTERS_COLUMNS,
    JOURNAL_COLUMNS,
    LINES_COLUMNS,
    OPS_COLUMNS,
    History,
    Observation,
    RunMeta,
    conform,
    empty_frame,
)

__all__ = ["history_from_prediction"]

_STATUS = {Outcome.APPLIED: 202, Outcome.DEAD_LETTERED: 202, Outcome.PENDING: 202, Outcome.SHED: 429,
           Outcome.UNAVAILABLE: 503}  # fmt: skip
_ERROR = {429: "http_429", 503: "http_503"}


def history_from_prediction(prediction: Prediction, run_id: str = "synthetic",
                            apply_column: str | None = "committed_s", ack_latency_ms: float = 2.0) -> History:  # fmt: skip
    """A History as if the live system had behaved exactly like this prediction (needs its trace).

    apply_column: "committed_s" stamps each journal row with its commit time,
    "applied_s" with its batch's start (as the reference system's applied_at
    = now() does), None with neither, so that the ledger_posted_events_total
    fallback is exercised.
    """
    if apply_column not in ("committed_s", "applied_s", None):
        raise ValueError(f'"apply_column" must be "committed_s", "applied_s" or None, got {apply_column!r}')
    trace = prediction.trace
    if trace is None:
        raise ValueError("the prediction has no trace; simulate with keep_trace=True")
    n = len(trace.arrival_s)
    event_ids = np.array([f"e{i:08d}" for i in range(n)], dtype=object)
    status = np.array([_STATUS[Outcome(o)] for o in trace.outcome], dtype=np.int64)
    invoke = pd.DataFrame({
        "time_s": trace.arrival_s, "process": "client-0-0", "type": "invoke", "f": "submit",
        "op_id": np.arange(n), "event_id": event_ids, "key": [f"k{p}" for p in trace.partition],
        "intended_time_s": trace.arrival_s, "attempt": 1, "duplicate": False, "valid_body": True,
    })  # fmt: skip
    ok = status == 202
    complete = pd.DataFrame({
        "time_s": trace.arrival_s + ack_latency_ms / 1000.0, "process": "client-0-0",
        "type": np.where(ok, "ok", "fail"), "f": "submit", "op_id": np.arange(n), "event_id": event_ids,
        "status_code": status, "latency_ms": ack_latency_ms,
        "error": pd.array([None if s == 202 else _ERROR[s] for s in status], dtype="string"),
    })  # fmt: skip
    ops = pd.concat([invoke, complete], ignore_index=True).sort_values(["time_s", "type"], kind="stable")
    ops["index"] = np.arange(len(ops))
    ops = conform(ops, OPS_COLUMNS, "ops")

    applied = trace.outcome == Outcome.APPLIED
    order = np.argsort(trace.done_s[applied], kind="stable")
    idx = np.nonzero(applied)[0][order]
    journal = conform(pd.DataFrame({
        "seq": np.arange(1, len(idx) + 1), "event_id": event_ids[idx], "key": [f"k{trace.partition[i]}" for i in idx],
        "debit_account": "a", "credit_account": "b", "amount_minor": 1, "currency": "EUR",
    }), JOURNAL_COLUMNS, "journal")  # fmt: skip
    if apply_column == "committed_s":
        journal["committed_s"] = trace.done_s[idx]
    elif apply_column == "applied_s":
        journal["applied_s"] = trace.start_s[idx]
    dead = np.nonzero(trace.outcome == Outcome.DEAD_LETTERED)[0]
    dead_letters = conform(pd.DataFrame({"event_id": event_ids[dead], "reason": "retries_exhausted",
                                         "attempts": prediction.config.retry.attempts_max}),
                           DEAD_LETTERS_COLUMNS, "dead_letters")  # fmt: skip
    observation = Observation(journal, empty_frame(LINES_COLUMNS), empty_frame(BALANCES_COLUMNS), dead_letters)
    meta = RunMeta(run_id=run_id, seed=prediction.seed, scenario="synthetic (capacity model)",
                   extra={"system": {"consumers": prediction.config.consumers,
                                     "partitions": prediction.config.partitions,
                                     "batch_size": prediction.config.batch_size_max}})  # fmt: skip
    return History(ops=ops, metrics=prediction.metrics.copy(), observation=observation, meta=meta)
