"""Money checkers: conservation (lines sum to zero per event and balances per currency) and replay equals projection.

Why two checkers: they catch different defects. An event written with
unbalanced lines (the projection faithfully following them) breaks
conservation while replay still equals projection; a projection updated twice
or missed for an event (outside the journal transaction) breaks replay while
every sum stays zero. Both sums are per currency: amounts in two currencies
never add up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.checkers.common import evidence_for, first_in_order, needs_observation, verdict
from harness.checkers.config import CheckConfig
from harness.checkers.facts import Facts, hash_column
from harness.checkers.verdict import Evidence, EVIDENCE_MAX, Verdict
from harness.history.schema import History

__all__ = ["conservation", "replay_equals_projection"]

_MIX = np.uint64(0x100000001B3)


def _pair_hash(a: pd.Series, b: pd.Series) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (hash_column(a) * _MIX) ^ hash_column(b)


def conservation(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Every event's lines sum to zero in each currency; all balances sum to zero in each currency."""
    name = "conservation"
    facts = facts if facts is not None else Facts(history)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    lines = history.observation.lines
    with np.errstate(over="ignore"):
        group = (facts.codes["lines"].astype(np.uint64) * _MIX) ^ hash_column(lines["currency"])
    frame = pd.DataFrame({
        "group": group,
        "event_id": lines["event_id"].to_numpy(),
        "currency": lines["currency"].to_numpy(),
        "amount": lines["amount_minor"].to_numpy(dtype="int64"),
    })
    sums = frame.groupby("group", sort=False).agg(event_id=("event_id", "first"), currency=("currency", "first"),
                                                  total=("amount", "sum"))
    unbalanced = sums.loc[(sums["total"] != 0).to_numpy()]
    balances = history.observation.balances
    per_currency = balances.groupby("currency", sort=True)["balance_minor"].sum()
    off = per_currency[per_currency != 0]
    items = [(row.event_id, f"lines in {row.currency} sum to {row.total:+d}, not 0")
             for row in unbalanced.head(EVIDENCE_MAX).itertuples()]
    evidence = list(evidence_for(facts, items))
    for currency, total in off.items():
        if len(evidence) < EVIDENCE_MAX:
            evidence.append(Evidence(None, f"balances in {currency} sum to {int(total):+d}, not 0"))
    counts = {
        "events_judged": int(frame["event_id"].nunique()) if len(frame) else 0,
        "events_unbalanced": int(unbalanced["event_id"].nunique()),
        "currencies_unbalanced": len(off),
    }
    violations = counts["events_unbalanced"] + counts["currencies_unbalanced"]
    return verdict(name, violations, "unbalanced events or currencies",
                   f"{counts['events_judged']} events and {len(per_currency)} currencies judged", counts,
                   tuple(evidence))


def replay_equals_projection(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Balances rebuilt from the journal's lines equal the balance table, account by account, currency by currency;
    and the lines are the journal's: every line belongs to a posted event, every posted event has lines."""
    name = "replay_equals_projection"
    facts = facts if facts is not None else Facts(history)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    lines = history.observation.lines
    balances = history.observation.balances
    rebuilt = pd.DataFrame({
        "cell": _pair_hash(lines["account"], lines["currency"]),
        "account": lines["account"].to_numpy(),
        "currency": lines["currency"].to_numpy(),
        "replayed": lines["amount_minor"].to_numpy(dtype="int64"),
    }).groupby("cell", sort=False).agg(account=("account", "first"), currency=("currency", "first"),
                                       replayed=("replayed", "sum"))
    table = pd.DataFrame({
        "cell": _pair_hash(balances["account"], balances["currency"]),
        "account_t": balances["account"].to_numpy(),
        "currency_t": balances["currency"].to_numpy(),
        "projected": balances["balance_minor"].to_numpy(dtype="int64"),
    })
    listed_twice = table["cell"].duplicated(keep="first").to_numpy()
    table = table.groupby("cell", sort=False).agg(account_t=("account_t", "first"), currency_t=("currency_t", "first"),
                                                  projected=("projected", "sum"))
    both = rebuilt.join(table, how="outer")
    replayed = both["replayed"].fillna(0).to_numpy(dtype="int64")
    projected = both["projected"].fillna(0).to_numpy(dtype="int64")
    drift = projected - replayed
    differ = drift != 0
    account = both["account"].fillna(both["account_t"]).to_numpy()
    currency = both["currency"].fillna(both["currency_t"]).to_numpy()

    journal_ev = facts.journal["ev"].to_numpy()
    line_ev = facts.codes["lines"]
    orphan_lines = ~np.isin(line_ev, journal_ev)
    bare_events = ~np.isin(journal_ev, line_ev)

    evidence = []
    for i in first_in_order(differ, np.arange(len(both))):
        evidence.append(Evidence(None, f"{account[i]} {currency[i]}: balance table says {projected[i]}, "
                                       f"the journal's lines add up to {replayed[i]} (drift {drift[i]:+d})"))
    items = [(lines["event_id"].iloc[i], "has lines but is not in the journal") for i in np.flatnonzero(orphan_lines)[:5]]
    items += [(facts.journal["event_id"].iloc[i], "is in the journal but has no lines") for i in np.flatnonzero(bare_events)[:5]]
    evidence.extend(evidence_for(facts, items))
    if listed_twice.any():
        evidence.append(Evidence(None, f"{int(listed_twice.sum())} balance rows repeat an (account, currency) "
                                       "already listed; they were added together"))
    counts = {
        "balance_cells_judged": len(both),
        "balance_cells_drifted": int(differ.sum()),
        "lines_without_journal_event": int(orphan_lines.sum()),
        "journal_events_without_lines": int(len(np.unique(journal_ev[bare_events]))),
        "balance_rows_repeated": int(listed_twice.sum()),
    }
    violations = (counts["balance_cells_drifted"] + counts["lines_without_journal_event"]
                  + counts["journal_events_without_lines"] + counts["balance_rows_repeated"])
    figures = {"drift_minor_abs_total": float(np.abs(drift).sum())}
    return verdict(name, violations, "differences between replay and projection",
                   f"{len(both)} (account, currency) balances judged", counts, tuple(evidence), figures)
