"""Synthetic histories for benchmarks and property tests: large correct runs built with numpy, and planted defects.

Why: the checkers' speed must be measured on histories shaped like real runs
(hot keys, retries after 429, timeouts, duplicates, conflicts, invalid bodies,
dead letters, a fault window answered 503 + Retry-After), and the same
generator shows at scale that a correct history passes while one planted defect
fails exactly one checker. Everything is drawn from a numpy Generator seeded by
the caller; nothing here is used by a live run.

Shape per event (probabilities in SyntheticShape): ok; 429 then ok on retry;
timeout then ok on retry; indeterminate (timeout) and posted; indeterminate and
never posted; refused (429, never retried); invalid body (422); accepted then
dead-lettered. On top: deliberate duplicates and 409 conflicts of earlier ok
events. Arrivals are Poisson at rate_per_s; debit accounts (= ordering keys)
follow a Zipf law over `accounts`. Arrivals inside the fault window are
answered 503 with Retry-After and not posted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from harness.history.schema import (
    BALANCES_COLUMNS,
    DEAD_LETTERS_COLUMNS,
    JOURNAL_COLUMNS,
    LINES_COLUMNS,
    METRICS_COLUMNS,
    OPS_COLUMNS,
    History,
    Observation,
    Phase,
    RunMeta,
    conform,
    empty_frame,
)

__all__ = ["SyntheticShape", "synthetic_history", "DEFECTS", "plant", "balances_from_lines", "OPS_MAX"]

OPS_MAX = 50_000_000  # a typo of 10**9 must fail here, not fill memory

# Event kinds.
OK, RETRY_OK, TIMEOUT_OK, INFO_POSTED, INFO_LOST, REFUSED, INVALID, DEAD = range(8)
_POSTED_KINDS = (OK, RETRY_OK, TIMEOUT_OK, INFO_POSTED)


@dataclass(frozen=True)
class SyntheticShape:
    rate_per_s: float = 2000.0
    accounts: int = 1000
    zipf_exponent: float = 1.1
    clients: int = 64
    latency_ms_median: float = 5.0
    timeout_ms: float = 2000.0
    # kind probabilities, in the order OK .. DEAD (OK takes the rest)
    retry_ok_share: float = 0.03
    timeout_ok_share: float = 0.01
    info_posted_share: float = 0.01
    info_lost_share: float = 0.005
    refused_share: float = 0.01
    invalid_share: float = 0.01
    dead_share: float = 0.002
    duplicate_share: float = 0.03  # extra submissions, relative to events
    conflict_share: float = 0.01
    fault_window: tuple | None = (0.40, 0.45)  # as shares of the load span; None: no fault
    duration_s_min: float = 60.0  # small histories slow their rate so that recovery can be observed
    quiet_s: float = 6.0  # no timeouts this long around the fault (its grace): they would be hangs in it


def synthetic_history(ops_target: int, seed: int, shape: SyntheticShape = SyntheticShape()) -> History:
    """A correct history of about ops_target ops (every checker passes it)."""
    if not 10 <= ops_target <= OPS_MAX:
        raise ValueError(f'"ops_target" must be in [10, {OPS_MAX}], got {ops_target}')
    rng = np.random.default_rng(seed)
    ops_per_event = 2 * (
        1 + shape.retry_ok_share + shape.timeout_ok_share + shape.duplicate_share + shape.conflict_share
    )
    n = max(4, int(ops_target / ops_per_event))
    rate_per_s = min(shape.rate_per_s, n / shape.duration_s_min)
    arrival_s = np.cumsum(rng.exponential(1.0 / rate_per_s, n))
    span_s = float(arrival_s[-1])
    shares = np.array(
        [
            shape.retry_ok_share,
            shape.timeout_ok_share,
            shape.info_posted_share,
            shape.info_lost_share,
            shape.refused_share,
            shape.invalid_share,
            shape.dead_share,
        ]
    )
    probabilities = np.concatenate([[1.0 - shares.sum()], shares])
    kind = rng.choice(8, size=n, p=probabilities)
    faulted = np.zeros(n, dtype=bool)
    if shape.fault_window is not None:
        f_start, f_stop = shape.fault_window[0] * span_s, shape.fault_window[1] * span_s
        faulted = (arrival_s >= f_start) & (arrival_s < f_stop)
        near = (arrival_s >= f_start - shape.timeout_ms / 1000.0 - 1.0) & (arrival_s < f_stop + shape.quiet_s)
        kind[near & np.isin(kind, (TIMEOUT_OK, INFO_POSTED, INFO_LOST))] = OK
    kind[faulted] = REFUSED
    for needed in (DEAD, REFUSED):  # every kind of defect needs a place to go, even in a small history
        if not (~faulted & (kind == needed)).any():
            candidates = np.flatnonzero(~faulted & (kind == OK))
            if len(candidates):
                kind[candidates[len(candidates) // 2]] = needed

    ranks = np.arange(1, shape.accounts + 1)
    weights = 1.0 / ranks**shape.zipf_exponent
    debit = rng.choice(shape.accounts, size=n, p=weights / weights.sum())
    credit = (debit + 1 + rng.integers(0, shape.accounts - 1, size=n)) % shape.accounts
    names = pd.array([f"acct-{i:06d}" for i in range(shape.accounts)], dtype="string")
    currencies = pd.array(["EUR", "USD", "GBP"], dtype="string")
    currency = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    amount = rng.integers(1, 1_000_000, size=n)
    # UUID-shaped (36 characters, as the load generator sends): the ids' length is most of the memory.
    # Random in the first two groups, the event's number in the last two: unique for 2^32 events.
    event_id = pd.array(
        [
            f"{v >> 16:08x}-{v & 0xFFFF:04x}-4000-a{i >> 20 & 0xFFF:03x}-{i & 0xFFFFF:012x}"
            for i, v in enumerate(rng.integers(0, 2**48, size=n).tolist())
        ],
        dtype="string",
    )
    process = pd.array([f"client-0-{i}" for i in range(shape.clients)], dtype="string")
    client = rng.integers(0, shape.clients, size=n)

    def latency_s(size: int) -> np.ndarray:
        return rng.lognormal(np.log(shape.latency_ms_median), 0.5, size) / 1000.0

    timeout_s = shape.timeout_ms / 1000.0
    blocks = []
    # First attempt of every event.
    lat = latency_s(n)
    first_type = np.full(n, "ok", dtype=object)
    status = np.full(n, 202.0)
    error = np.full(n, None, dtype=object)
    retry_after = np.full(n, np.nan)
    took = lat.copy()
    m = kind == RETRY_OK
    first_type[m], status[m], error[m], retry_after[m] = "fail", 429.0, "http_429", 0.05
    m = np.isin(kind, (TIMEOUT_OK, INFO_POSTED, INFO_LOST))
    first_type[m], status[m], error[m], took[m] = "info", np.nan, "timeout", timeout_s
    m = kind == REFUSED
    first_type[m], status[m], error[m], retry_after[m] = "fail", 429.0, "http_429", 1.0
    m = (kind == REFUSED) & faulted
    first_type[m], status[m], error[m] = "info", 503.0, "http_503"
    m = kind == INVALID
    first_type[m], status[m], error[m] = "fail", 422.0, "http_422"
    everyone = np.arange(n)
    blocks.append(
        dict(
            ev=everyone,
            invoke_s=arrival_s,
            took_s=took,
            type=first_type,
            status=status,
            error=error,
            retry_after=retry_after,
            attempt=np.ones(n),
            duplicate=np.zeros(n, bool),
            valid=kind != INVALID,
            amount=amount,
            intended=arrival_s,
        )
    )
    # Second attempts: after a 429 (Retry-After) or a timeout.
    again = np.flatnonzero(np.isin(kind, (RETRY_OK, TIMEOUT_OK)))
    second_s = arrival_s[again] + took[again] + np.where(kind[again] == RETRY_OK, 0.05, 0.1)
    k = len(again)
    blocks.append(
        dict(
            ev=again,
            invoke_s=second_s,
            took_s=latency_s(k),
            type=np.full(k, "ok", dtype=object),
            status=np.full(k, 202.0),
            error=np.full(k, None, dtype=object),
            retry_after=np.full(k, np.nan),
            attempt=np.full(k, 2.0),
            duplicate=np.zeros(k, bool),
            valid=np.ones(k, bool),
            amount=amount[again],
            intended=np.full(k, np.nan),
        )
    )
    ok_first_s = np.where(kind == OK, arrival_s + took, np.nan)
    ok_first_s[again] = second_s + blocks[-1]["took_s"]
    ok_events = np.flatnonzero(np.isin(kind, (OK, RETRY_OK, TIMEOUT_OK)) & ~faulted)
    for share, conflict in ((shape.duplicate_share, False), (shape.conflict_share, True)):
        k = int(n * share)
        if k == 0 or len(ok_events) == 0:
            continue
        of = rng.choice(ok_events, size=k)
        at = ok_first_s[of] + rng.uniform(0.001, 1.0, size=k)
        blocks.append(
            dict(
                ev=of,
                invoke_s=at,
                took_s=latency_s(k),
                type=np.full(k, "fail" if conflict else "ok", dtype=object),
                status=np.full(k, 409.0 if conflict else 202.0),
                error=np.full(k, "http_409" if conflict else None, dtype=object),
                retry_after=np.full(k, np.nan),
                attempt=np.ones(k),
                duplicate=np.full(k, not conflict),
                valid=np.ones(k, bool),
                amount=amount[of] + (1 if conflict else 0),
                intended=at,
            )
        )
    attempts = {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}
    a = len(attempts["ev"])
    ev = attempts["ev"]
    op_id = np.arange(1, a + 1)
    invoke_s = attempts["invoke_s"]
    done_s = invoke_s + attempts["took_s"]

    def both(invoke_values, done_values):
        return np.concatenate([invoke_values, done_values])

    na_f = np.full(a, np.nan)
    ops = pd.DataFrame(
        {
            "time_s": both(invoke_s, done_s),
            "process": pd.array(process[np.concatenate([client[ev], client[ev]])], dtype="string"),
            "type": pd.array(both(np.full(a, "invoke", dtype=object), attempts["type"]), dtype="string"),
            "f": pd.array(np.full(2 * a, "submit", dtype=object), dtype="string"),
            "op_id": both(op_id, op_id),
            "event_id": pd.array(event_id[np.concatenate([ev, ev])], dtype="string"),
            "key": pd.array(both(names[debit[ev]], np.full(a, None, dtype=object)), dtype="string"),
            "debit_account": pd.array(both(names[debit[ev]], np.full(a, None, dtype=object)), dtype="string"),
            "credit_account": pd.array(both(names[credit[ev]], np.full(a, None, dtype=object)), dtype="string"),
            "amount_minor": pd.array(both(attempts["amount"].astype(float), na_f), dtype="Int64"),
            "currency": pd.array(both(currencies[currency[ev]], np.full(a, None, dtype=object)), dtype="string"),
            "intended_time_s": both(attempts["intended"], na_f),
            "attempt": pd.array(both(attempts["attempt"], na_f), dtype="Int64"),
            "duplicate": pd.array(both(attempts["duplicate"], np.full(a, None, dtype=object)), dtype="boolean"),
            "valid_body": pd.array(both(attempts["valid"], np.full(a, None, dtype=object)), dtype="boolean"),
            "status_code": pd.array(both(na_f, attempts["status"]), dtype="Int64"),
            "latency_ms": both(na_f, attempts["took_s"] * 1000.0),
            "error": pd.array(both(np.full(a, None, dtype=object), attempts["error"]), dtype="string"),
            "retry_after_s": both(na_f, attempts["retry_after"]),
        }
    )
    phases = []
    if shape.fault_window is not None:
        nemesis = pd.DataFrame(
            {
                "time_s": [f_start, f_stop],
                "process": ["nemesis", "nemesis"],
                "type": ["ok", "ok"],
                "f": ["fault_start", "fault_stop"],
                "op_id": [-1, -2],
                "fault_id": [0, 0],
                "fault": ["down on api_redis"] * 2,
                "value": ['{"link": "api_redis"}'] * 2,
            }
        )
        ops = pd.concat(
            [ops, conform(nemesis, {k: v for k, v in OPS_COLUMNS.items() if k != "index"}, "nemesis")],
            ignore_index=True,
        )
        phases = [Phase("baseline", 0.0, f_start), Phase("fault", f_start, f_stop), Phase("recovery", f_stop, span_s)]
    order = np.argsort(ops["time_s"].to_numpy(), kind="stable")
    ops = ops.take(order).reset_index(drop=True)
    ops.insert(0, "index", np.arange(len(ops), dtype="int64"))
    ops = conform(ops, OPS_COLUMNS, "ops")

    # A correct system applies an event when the attempt that enqueued it ran: the first invoke, except
    # after a 429 (that attempt did nothing; the retry enqueued it). Ties keep arrival order.
    effective_s = arrival_s.copy()
    retried = again[kind[again] == RETRY_OK]
    effective_s[retried] = second_s[kind[again] == RETRY_OK]
    posted = np.flatnonzero(np.isin(kind, _POSTED_KINDS) & ~faulted)
    posted = posted[np.argsort(effective_s[posted], kind="stable")]
    journal = pd.DataFrame(
        {
            "seq": np.arange(1, len(posted) + 1),
            "event_id": event_id[posted],
            "key": names[debit[posted]],
            "debit_account": names[debit[posted]],
            "credit_account": names[credit[posted]],
            "amount_minor": amount[posted],
            "currency": currencies[currency[posted]],
        }
    )
    lines = pd.DataFrame(
        {
            "event_id": pd.array(np.concatenate([event_id[posted], event_id[posted]]), dtype="string"),
            "account": pd.array(np.concatenate([names[debit[posted]], names[credit[posted]]]), dtype="string"),
            "currency": pd.array(np.concatenate([currencies[currency[posted]]] * 2), dtype="string"),
            "amount_minor": np.concatenate([-amount[posted], amount[posted]]),
        }
    )
    dead = np.flatnonzero(kind == DEAD)
    dead_letters = pd.DataFrame(
        {"event_id": event_id[dead], "reason": "poison: amount over the breaker's limit", "attempts": 3}
    )
    observation = Observation(
        journal=conform(journal, JOURNAL_COLUMNS, "journal"),
        lines=conform(lines, LINES_COLUMNS, "lines"),
        balances=balances_from_lines(lines),
        dead_letters=conform(dead_letters, DEAD_LETTERS_COLUMNS, "dead_letters")
        if len(dead)
        else empty_frame(DEAD_LETTERS_COLUMNS),
    )
    meta = RunMeta(
        run_id=f"synthetic-{ops_target}-{seed}",
        seed=seed,
        scenario="synthetic",
        phases=tuple(phases),
        drain_completed=True,
        drain_duration_s=1.0,
        backlog_left=0,
    )
    return History(ops=ops, metrics=empty_frame(METRICS_COLUMNS), observation=observation, meta=meta)


def balances_from_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """The projection a correct ledger holds: lines summed per (account, currency)."""
    if len(lines) == 0:
        return empty_frame(BALANCES_COLUMNS)
    sums = lines.groupby(["account", "currency"], sort=True)["amount_minor"].sum().reset_index()
    return conform(sums.rename(columns={"amount_minor": "balance_minor"}), BALANCES_COLUMNS, "balances")


# -- planted defects -----------------------------------------------------------------------------
# Each takes a correct history and a numpy Generator and returns the history with exactly one defect,
# written the way a real defect would leave the ledger (the projection follows the lines unless the
# defect is the projection itself). The checker each must fail is its key in DEFECTS.


def _with(history: History, **tables) -> History:
    return replace(history, observation=replace(history.observed, **tables))


def _acked_posted(history: History) -> np.ndarray:
    ops = history.ops
    ok_ids = ops.loc[(ops["type"] == "ok").to_numpy(dtype=bool, na_value=False), "event_id"]
    journal = history.observed.journal
    dead = history.observed.dead_letters["event_id"]
    mask = journal["event_id"].isin(ok_ids) & ~journal["event_id"].isin(dead)
    return np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))


def plant_duplicate_posting(history: History, rng: np.random.Generator) -> History:
    """One event posted a second time (later seq), its lines and balances too."""
    obs = history.observed
    row = obs.journal.iloc[[int(rng.integers(len(obs.journal)))]].copy()
    row["seq"] = int(obs.journal["seq"].max()) + 1
    journal = pd.concat([obs.journal, row], ignore_index=True)
    extra = obs.lines.loc[obs.lines["event_id"] == row["event_id"].iloc[0]]
    lines = pd.concat([obs.lines, extra], ignore_index=True)
    return _with(history, journal=journal, lines=lines, balances=balances_from_lines(lines))


def plant_lost_ack(history: History, rng: np.random.Generator) -> History:
    """One acknowledged event that never reached the ledger: no journal row, no lines, not dead-lettered."""
    obs = history.observed
    victim = obs.journal["event_id"].iloc[int(rng.choice(_acked_posted(history)))]
    journal = obs.journal.loc[obs.journal["event_id"] != victim].reset_index(drop=True)
    lines = obs.lines.loc[obs.lines["event_id"] != victim].reset_index(drop=True)
    return _with(history, journal=journal, lines=lines, balances=balances_from_lines(lines))


def plant_swapped_pair(history: History, rng: np.random.Generator) -> History:
    """Two events of one key applied in the wrong order, the first acknowledged before the second was invoked."""
    obs = history.observed
    ops = history.ops
    invokes = ops.loc[(ops["type"] == "invoke").to_numpy(dtype=bool, na_value=False)]
    first_invoke = invokes.groupby("event_id")["time_s"].min()
    oks = ops.loc[(ops["type"] == "ok").to_numpy(dtype=bool, na_value=False)]
    first_ok = oks.groupby("event_id")["time_s"].min()
    journal = obs.journal.copy()
    journal["inv"] = journal["event_id"].map(first_invoke).astype("float64")
    journal["ok"] = journal["event_id"].map(first_ok).astype("float64")
    journal = journal.sort_values("seq")
    nxt = journal.groupby("key").shift(-1)
    pairs = np.flatnonzero((journal["ok"] < nxt["inv"]).to_numpy(dtype=bool, na_value=False))
    if len(pairs) == 0:
        raise ValueError("no pair of sequential events on one key to swap")
    i = int(rng.choice(pairs))
    a_seq = journal["seq"].iloc[i]
    b_seq = nxt["seq"].iloc[i]
    seq = obs.journal["seq"].to_numpy().copy()
    ia, ib = np.flatnonzero(seq == a_seq)[0], np.flatnonzero(seq == b_seq)[0]
    seq[ia], seq[ib] = seq[ib], seq[ia]
    return _with(history, journal=obs.journal.assign(seq=seq))


def plant_unbalanced_line(history: History, rng: np.random.Generator) -> History:
    """One credit line off by one minor unit; the projection follows the lines."""
    obs = history.observed
    credits = np.flatnonzero((obs.lines["amount_minor"] > 0).to_numpy())
    i = int(rng.choice(credits))
    amounts = obs.lines["amount_minor"].to_numpy().copy()
    amounts[i] += 1
    lines = obs.lines.assign(amount_minor=amounts)
    return _with(history, lines=lines, balances=balances_from_lines(lines))


def plant_projection_drift(history: History, rng: np.random.Generator) -> History:
    """One event's lines applied twice to the balance table (not to the journal): sums stay zero."""
    obs = history.observed
    victim = obs.journal["event_id"].iloc[int(rng.integers(len(obs.journal)))]
    extra = obs.lines.loc[obs.lines["event_id"] == victim]
    balances = balances_from_lines(pd.concat([obs.lines, extra], ignore_index=True))
    return _with(history, balances=balances)


def plant_phantom(history: History, rng: np.random.Generator) -> History:
    """One event whose every submission failed, posted anyway (with its lines)."""
    ops = history.ops
    sub = ops.loc[(ops["f"] == "submit").to_numpy(dtype=bool, na_value=False)]
    done = sub.loc[sub["type"] != "invoke"].groupby("event_id")["type"].agg(lambda t: set(t) == {"fail"})
    failed = done[done].index
    invokes = sub.loc[(sub["type"] == "invoke") & sub["event_id"].isin(failed) & sub["valid_body"].fillna(True)]
    invokes = invokes.drop_duplicates("event_id")
    if len(invokes) == 0:
        raise ValueError("no failed event to post")
    op = invokes.iloc[int(rng.integers(len(invokes)))]
    obs = history.observed
    row = pd.DataFrame(
        [
            {
                "seq": int(obs.journal["seq"].max()) + 1,
                "event_id": op["event_id"],
                "key": op["key"],
                "debit_account": op["debit_account"],
                "credit_account": op["credit_account"],
                "amount_minor": int(op["amount_minor"]),
                "currency": op["currency"],
            }
        ]
    )
    journal = pd.concat([obs.journal, conform(row, JOURNAL_COLUMNS, "journal")], ignore_index=True)
    new_lines = pd.DataFrame(
        {
            "event_id": [op["event_id"]] * 2,
            "account": [op["debit_account"], op["credit_account"]],
            "currency": [op["currency"]] * 2,
            "amount_minor": [-int(op["amount_minor"]), int(op["amount_minor"])],
        }
    )
    lines = pd.concat([obs.lines, conform(new_lines, LINES_COLUMNS, "lines")], ignore_index=True)
    return _with(history, journal=journal, lines=lines, balances=balances_from_lines(lines))


def plant_dead_letter_without_reason(history: History, rng: np.random.Generator) -> History:
    """One dead letter whose reason is missing."""
    letters = history.observed.dead_letters
    if len(letters) == 0:
        raise ValueError("no dead letter to spoil")
    reason = letters["reason"].copy()
    reason.iloc[int(rng.integers(len(letters)))] = pd.NA
    return _with(history, dead_letters=letters.assign(reason=reason))


# checker that must fail -> the defect that must make it (and only it) fail
DEFECTS: dict[str, Callable[[History, np.random.Generator], History]] = {
    "no_double_posting": plant_duplicate_posting,
    "no_lost_ack": plant_lost_ack,
    "no_phantom": plant_phantom,
    "ordering": plant_swapped_pair,
    "conservation": plant_unbalanced_line,
    "replay_equals_projection": plant_projection_drift,
    "dead_letters_accounted": plant_dead_letter_without_reason,
}


def plant(history: History, checker: str, rng: np.random.Generator) -> History:
    """The history with the one defect that checker must catch."""
    return DEFECTS[checker](history, rng)
