"""Money checkers: conservation (each event's lines are its journal row's two legs, they sum to zero, and
balances sum to zero per currency) and replay equals projection.

Lines against the journal row: zero-sum lines can still book the money to the
wrong account, for another amount, or in another currency than the event says
(lines built from a stale account mapping, a sign flipped for one currency).
Each journal row must have exactly its two lines: debit account -amount and
credit account +amount, in its currency; an event posted twice has two pairs.

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
from harness.checkers.facts import Facts, event_codes
from harness.checkers.verdict import EVIDENCE_MAX, Evidence, Verdict
from harness.history.schema import History

__all__ = ["conservation", "replay_equals_projection"]


def _small_codes(*columns: pd.Series) -> tuple:
    """Codes shared by the columns (NA -> 0, values 1..n) and n + 1, for packing into one integer key."""
    codes = [c + 1 for c in event_codes(list(columns))]
    return codes, int(max((c.max() for c in codes if len(c)), default=0)) + 1


def _label(frame: pd.DataFrame, keys: np.ndarray, wanted, columns: tuple) -> dict:
    """For each wanted key, the given columns' values in the first row carrying it."""
    out: dict = {}
    if len(wanted) == 0:
        return out
    first = pd.Series(np.arange(len(keys))).groupby(keys).first()
    for key in wanted:
        row = frame.iloc[int(first[key])]
        out[key] = tuple(row[c] for c in columns)
    return out


_LEG_COLUMNS = ["event_id", "account", "currency", "amount_minor"]


def _lines_unlike_their_row(history: History) -> tuple[int, list[tuple[str, str]]]:
    """How many events' lines are not exactly their journal rows' legs, and evidence (row and lines shown)."""
    journal = history.observed.journal
    lines = history.observed.lines
    amount = journal["amount_minor"].to_numpy(dtype="int64")
    debit = pd.DataFrame(
        {"event_id": journal["event_id"], "account": journal["debit_account"], "currency": journal["currency"],
         "amount_minor": -amount}
    )  # fmt: skip
    credit = pd.DataFrame(
        {"event_id": journal["event_id"], "account": journal["credit_account"], "currency": journal["currency"],
         "amount_minor": amount}
    )  # fmt: skip
    expected = pd.concat([debit, credit], ignore_index=True)
    want = expected.groupby(_LEG_COLUMNS, dropna=False, sort=False).size().rename("want")
    have = lines[_LEG_COLUMNS].groupby(_LEG_COLUMNS, dropna=False, sort=False).size().rename("have")
    both = pd.concat([want, have], axis=1).fillna(0)
    differ = both[both["want"] != both["have"]]
    events = pd.unique(differ.index.get_level_values("event_id").astype("string").dropna())
    items = []
    for event in events[:EVIDENCE_MAX]:
        rows = journal.loc[(journal["event_id"] == event).to_numpy(dtype=bool, na_value=False)]
        row_text = (
            "; ".join(
                f"{r.debit_account} -> {r.credit_account} {int(r.amount_minor)} {r.currency}" for r in rows.itertuples()
            )
            or "no journal row"
        )
        own = lines.loc[(lines["event_id"] == event).to_numpy(dtype=bool, na_value=False)]
        line_text = ", ".join(f"{r.account} {int(r.amount_minor):+d} {r.currency}" for r in own.itertuples()) or "none"
        items.append((str(event), f"lines differ from the journal row: row {row_text}; lines {line_text}"))
    return len(events), items


def conservation(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Every event's lines sum to zero in each currency; all balances sum to zero in each currency."""
    name = "conservation"
    facts = facts if facts is not None else Facts(history)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    lines = history.observed.lines
    ev = facts.codes["lines"]
    (currency,), width = _small_codes(lines["currency"])
    group = ev * width + currency
    sums = pd.Series(lines["amount_minor"].to_numpy(dtype="int64")).groupby(group, sort=True).sum()
    bad_groups = sums.index.to_numpy()[sums.to_numpy() != 0]
    labels = _label(lines, group, bad_groups[:EVIDENCE_MAX], ("event_id", "currency"))
    items = [
        (labels[g][0], f"lines in {labels[g][1]} sum to {int(sums[g]):+d}, not 0") for g in bad_groups[:EVIDENCE_MAX]
    ]
    mismatched, unlike = _lines_unlike_their_row(history)
    items += unlike[: max(0, EVIDENCE_MAX - len(items))]
    balances = history.observed.balances
    per_currency = balances.groupby("currency", sort=True)["balance_minor"].sum()
    off = per_currency[per_currency != 0]
    evidence = list(evidence_for(facts, items))
    for label, total in off.items():
        if len(evidence) < EVIDENCE_MAX:
            evidence.append(Evidence(None, f"balances in {label} sum to {int(total):+d}, not 0"))
    counts = {
        "events_judged": int(len(pd.unique(ev))),
        "events_unbalanced": int(len(np.unique(bad_groups // width))),
        "events_lines_unlike_journal": mismatched,
        "currencies_unbalanced": len(off),
    }
    violations = counts["events_unbalanced"] + counts["currencies_unbalanced"] + counts["events_lines_unlike_journal"]
    return verdict(
        name,
        violations,
        "unbalanced events or currencies, or lines unlike their journal row",
        f"{counts['events_judged']} events and {len(per_currency)} currencies judged",
        counts,
        tuple(evidence),
    )


def replay_equals_projection(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Balances rebuilt from the journal's lines equal the balance table, account by account, currency by currency;
    and the lines are the journal's: every line belongs to a posted event, every posted event has lines."""
    name = "replay_equals_projection"
    facts = facts if facts is not None else Facts(history)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    lines = history.observed.lines
    balances = history.observed.balances
    (account_l, account_b), _ = _small_codes(lines["account"], balances["account"])
    (currency_l, currency_b), width = _small_codes(lines["currency"], balances["currency"])
    cell_l = account_l * width + currency_l
    cell_b = account_b * width + currency_b
    replayed = pd.Series(lines["amount_minor"].to_numpy(dtype="int64")).groupby(cell_l).sum()
    projected_rows = pd.Series(balances["balance_minor"].to_numpy(dtype="int64"))
    listed_twice = pd.Series(cell_b).duplicated(keep="first").to_numpy()
    projected = projected_rows.groupby(cell_b).sum()
    both = pd.concat([replayed.rename("replayed"), projected.rename("projected")], axis=1).fillna(0)
    replayed_v = both["replayed"].to_numpy(dtype="int64")
    projected_v = both["projected"].to_numpy(dtype="int64")
    drift = projected_v - replayed_v
    differ = drift != 0
    cells = both.index.to_numpy()

    journal_ev = facts.journal["ev"].to_numpy()
    line_ev = facts.codes["lines"]
    orphan_lines = ~facts.has_code(line_ev, journal_ev)
    bare_events = ~facts.has_code(journal_ev, line_ev)

    evidence = []
    shown = first_in_order(differ, np.arange(len(both)))
    wanted = cells[shown]
    in_lines = pd.Series(wanted).isin(cell_l).to_numpy()
    names = _label(lines, cell_l, wanted[in_lines], ("account", "currency"))
    names.update(_label(balances, cell_b, wanted[~in_lines], ("account", "currency")))
    for i in shown:
        account, currency = names[cells[i]]
        evidence.append(
            Evidence(
                None,
                f"{account} {currency}: balance table says {projected_v[i]}, "
                f"the journal's lines add up to {replayed_v[i]} (drift {drift[i]:+d})",
            )
        )
    items = [
        (lines["event_id"].iloc[i], "has lines but is not in the journal") for i in np.flatnonzero(orphan_lines)[:5]
    ]
    items += [
        (history.observed.journal["event_id"].iloc[i], "is in the journal but has no lines")
        for i in np.flatnonzero(bare_events)[:5]
    ]
    evidence.extend(evidence_for(facts, items))
    if listed_twice.any():
        evidence.append(
            Evidence(
                None,
                f"{int(listed_twice.sum())} balance rows repeat an (account, currency) "
                "already listed; they were added together",
            )
        )
    counts = {
        "balance_cells_judged": len(both),
        "balance_cells_drifted": int(differ.sum()),
        "lines_without_journal_event": int(orphan_lines.sum()),
        "journal_events_without_lines": int(len(np.unique(journal_ev[bare_events]))),
        "balance_rows_repeated": int(listed_twice.sum()),
    }
    violations = (
        counts["balance_cells_drifted"]
        + counts["lines_without_journal_event"]
        + counts["journal_events_without_lines"]
        + counts["balance_rows_repeated"]
    )
    figures = {"drift_minor_abs_total": float(np.abs(drift).sum())}
    return verdict(
        name,
        violations,
        "differences between replay and projection",
        f"{len(both)} (account, currency) balances judged",
        counts,
        tuple(evidence),
        figures,
    )
