"""A tiny history notation for tests: write a run as a timeline of calls, get a conformed History.

Why (Elle's habit): a checker is believed when it is seen passing and failing
on small histories a person can read. A test reads like the run it describes:

    t = Timeline()
    t.ok("e1", at=0.0, key="A")                 # invoke at 0.0, 202 at 0.01
    t.fail("e2", at=0.1, status=429, retry_after_s=1.0)
    t.ok("e2", at=1.2)                          # the retry: attempt 2, same body
    t.info("e3", at=0.2, error="timeout", took=2.0)
    t.fault(start=3.0, stop=5.0, fault="latency on client_api")
    t.post("e1"); t.post("e2")                  # journal rows, lines, balances follow
    history = t.build()

Bodies: an event's first submit fixes its body (defaults: key "A", debit = key,
credit "bank", 100 EUR); a later submit with other fields is a conflicting body.
Ledger defects are planted with line(), drift() and post(..., amount_minor=...).
The lead's integration tests and the docs' example reuse it; it is not used by
the harness at run time.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pandas as pd

from harness.history.schema import (
    BALANCES_COLUMNS,
    DEAD_LETTERS_COLUMNS,
    JOURNAL_COLUMNS,
    LINES_COLUMNS,
    METRICS_COLUMNS,
    History,
    Observation,
    Phase,
    RunMeta,
    conform,
    empty_frame,
)
from harness.history.store import ops_from_records

__all__ = ["Timeline", "default_body"]

_BODY = ("key", "debit_account", "credit_account", "amount_minor", "currency")


def default_body(key: str = "A") -> dict:
    return {"key": key, "debit_account": key, "credit_account": "bank", "amount_minor": 100, "currency": "EUR"}


class Timeline:
    """Collects ops, journal rows, lines, dead letters and phases; build() returns the History."""

    def __init__(
        self, run_id: str = "timeline", seed: int = 0, process: str = "client-0-0", closed_model: bool = False
    ) -> None:
        self.closed_model = closed_model  # closed model: invokes carry no intended_time_s
        self.run_id = run_id
        self.seed = seed
        self.process = process
        self._ops: list[dict] = []
        self._op_id = 0
        self._attempts: dict[str, int] = defaultdict(int)
        self._bodies: dict[str, dict] = {}
        self._journal: list[dict] = []
        self._lines: list[dict] = []
        self._drift: dict[tuple, int] = defaultdict(int)
        self._dead: list[dict] = []
        self._phases: list[Phase] = []
        self._metrics: list[dict] = []
        self._fault_id = 0

    # -- client ops ----------------------------------------------------------------------

    def body(self, event_id: str, **fields) -> dict:
        """The body an event was (or will be) submitted with; fields override it without fixing it."""
        base = dict(self._bodies.get(event_id) or default_body(fields.get("key", "A")))
        if "key" in fields and "debit_account" not in fields and event_id not in self._bodies:
            base["debit_account"] = fields["key"]
        base.update({k: v for k, v in fields.items() if k in _BODY})
        return base

    def submit(
        self,
        event_id: str,
        at: float,
        outcome: str | None,
        *,
        took: float = 0.01,
        status: int | None = None,
        error: str | None = None,
        retry_after_s: float | None = None,
        duplicate: bool = False,
        valid_body: bool = True,
        intended: float | None = None,
        attempt: int | None = None,
        process: str | None = None,
        **fields,
    ) -> int:
        """An invoke at `at` and, unless outcome is None, its completion (ok / fail / info) at at + took."""
        body = self.body(event_id, **fields)
        self._bodies.setdefault(event_id, body)
        self._attempts[event_id] += 1
        self._op_id += 1
        op_id = self._op_id
        process = process or self.process
        self._ops.append(
            {
                "time_s": at,
                "process": process,
                "type": "invoke",
                "f": "submit",
                "op_id": op_id,
                "event_id": event_id,
                **body,
                "intended_time_s": None if self.closed_model else at if intended is None else intended,
                "attempt": attempt if attempt is not None else self._attempts[event_id],
                "duplicate": duplicate,
                "valid_body": valid_body,
            }
        )
        if outcome is not None:
            if status is None:
                status = {"ok": 202, "fail": 409}.get(outcome)
            if error is None and outcome != "ok":
                error = f"http_{status}" if status is not None else "connection_reset"
            self._ops.append(
                {
                    "time_s": at + took,
                    "process": process,
                    "type": outcome,
                    "f": "submit",
                    "op_id": op_id,
                    "event_id": event_id,
                    "status_code": status,
                    "latency_ms": took * 1000.0,
                    "error": error,
                    "retry_after_s": retry_after_s,
                }
            )
        return op_id

    def ok(self, event_id: str, at: float, **kw) -> int:
        return self.submit(event_id, at, "ok", **kw)

    def fail(self, event_id: str, at: float, **kw) -> int:
        return self.submit(event_id, at, "fail", **kw)

    def info(self, event_id: str, at: float, **kw) -> int:
        kw.setdefault("error", "timeout")
        return self.submit(event_id, at, "info", **kw)

    def pending(self, event_id: str, at: float, **kw) -> int:
        """An invoke that never completed."""
        return self.submit(event_id, at, None, **kw)

    def status(self, event_id: str, at: float, value: str, took: float = 0.01) -> int:
        """A status read (GET /v1/events/{id}) answered ok with value."""
        self._op_id += 1
        op = {"process": self.process, "f": "status", "op_id": self._op_id, "event_id": event_id}
        self._ops.append({**op, "time_s": at, "type": "invoke"})
        self._ops.append(
            {**op, "time_s": at + took, "type": "ok", "status_code": 200, "value": value, "latency_ms": took * 1000.0}
        )
        return self._op_id

    # -- faults, phases, metrics -------------------------------------------------------------

    def fault(
        self, start: float, stop: float | None, fault: str = "latency on client_api", fault_id: int | None = None
    ) -> int:
        """A nemesis fault_start at start and fault_stop at stop (None: never stopped)."""
        fault_id = self._fault_id if fault_id is None else fault_id
        self._fault_id = max(self._fault_id, fault_id) + 1
        for f, at in (("fault_start", start), ("fault_stop", stop)):
            if at is not None:
                self._ops.append(
                    {
                        "time_s": at,
                        "process": "nemesis",
                        "type": "ok",
                        "f": f,
                        "fault_id": fault_id,
                        "fault": fault,
                        "value": json.dumps({"fault": fault}),
                    }
                )
        return fault_id

    def phase(self, name: str, start: float, end: float) -> None:
        self._phases.append(Phase(name, start, end))

    def metric(self, at: float, metric: str, value: float, partition: int | None = None) -> None:
        self._metrics.append({"time_s": at, "metric": metric, "partition": partition, "value": value})

    # -- the ledger ----------------------------------------------------------------------

    def post(self, event_id: str, lines: bool = True, **fields) -> int:
        """A journal row (next seq) with the event's body (fields override), and its two lines."""
        body = self.body(event_id, **fields)
        seq = len(self._journal) + 1
        self._journal.append({"seq": seq, "event_id": event_id, **body})
        if lines:
            amount = body["amount_minor"]
            self.line(event_id, body["debit_account"], -amount, body["currency"])
            self.line(event_id, body["credit_account"], amount, body["currency"])
        return seq

    def line(self, event_id: str, account: str, amount_minor: int, currency: str = "EUR") -> None:
        """A raw journal line; balances follow the lines (use drift() to make them differ)."""
        self._lines.append(
            {"event_id": event_id, "account": account, "currency": currency, "amount_minor": amount_minor}
        )

    def drift(self, account: str, amount_minor: int, currency: str = "EUR") -> None:
        """Make the balance table differ from the lines by amount_minor (a projection defect)."""
        self._drift[(account, currency)] += amount_minor

    def dead_letter(self, event_id: str, reason: str | None = "poison", attempts: int = 1) -> None:
        self._dead.append({"event_id": event_id, "reason": reason, "attempts": attempts})

    # -- the result ----------------------------------------------------------------------

    def build(
        self, observed: bool = True, drain_completed: bool | None = True, backlog_left: int | None = 0
    ) -> History:
        ops = ops_from_records(self._ops)
        metrics = (
            conform(pd.DataFrame(self._metrics), METRICS_COLUMNS, "metrics")
            if self._metrics
            else empty_frame(METRICS_COLUMNS)
        )
        observation = None
        if observed:
            balances: dict[tuple, int] = defaultdict(int)
            for line in self._lines:
                balances[(line["account"], line["currency"])] += line["amount_minor"]
            for cell, amount in self._drift.items():
                balances[cell] += amount
            observation = Observation(
                journal=_table(self._journal, JOURNAL_COLUMNS, "journal"),
                lines=_table(self._lines, LINES_COLUMNS, "lines"),
                balances=_table(
                    [{"account": a, "currency": c, "balance_minor": v} for (a, c), v in sorted(balances.items())],
                    BALANCES_COLUMNS,
                    "balances",
                ),
                dead_letters=_table(self._dead, DEAD_LETTERS_COLUMNS, "dead_letters"),
            )
        meta = RunMeta(
            run_id=self.run_id,
            seed=self.seed,
            scenario="timeline",
            phases=tuple(self._phases),
            drain_completed=drain_completed if observed else None,
            backlog_left=backlog_left if observed else None,
        )
        return History(ops=ops, metrics=metrics, observation=observation, meta=meta)


def _table(rows: list[dict], columns, name: str) -> pd.DataFrame:
    if not rows:
        return empty_frame(columns)
    return conform(pd.DataFrame(rows), columns, name)
