"""Journal checkers: no double-posting, no lost acknowledgement, no phantom, dead letters accounted.

Why these four together: each compares what clients were told (ok / fail /
info per attempt) with what the ledger holds after the drain, through the same
facts (body groups, journal hashes).

How retries, duplicates and conflicts are read (one event id may have many
attempts, each its own op_id):
- attempts are grouped by (event id, body). A body is *acknowledged* when any of
  its attempts ended ok, *indeterminate* when none ended ok but one ended info
  or never ended, *failed* when every attempt ended fail (nothing happened);
- a deliberate duplicate (same id, same body) joins its original's group, so
  two ok answers ask for one posting;
- a conflict (same id, another body, answered 409) is its own group, failed:
  that body must never be posted, while the original body must;
- an invalid body (valid_body False) must never be acknowledged nor posted;
- "an info event is posted at most once" is judged by no_double_posting, which
  holds every event to at most once (so one defect fails one checker).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.checkers.common import evidence_for, first_in_order, needs_observation, unknown, verdict
from harness.checkers.config import CheckConfig
from harness.checkers.facts import Facts
from harness.checkers.verdict import Verdict
from harness.history.schema import History

__all__ = ["no_double_posting", "no_lost_ack", "no_phantom", "dead_letters_accounted"]


def _facts(history: History, facts: Facts | None) -> Facts:
    return facts if facts is not None else Facts(history)


def no_double_posting(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Each event id is in the journal at most once (whatever its answers: ok, info, duplicate)."""
    name = "no_double_posting"
    facts = _facts(history, facts)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    journal = facts.journal
    twice = journal["ev"].duplicated(keep=False).to_numpy()
    repeated = journal.loc[twice].assign(position=np.flatnonzero(twice))
    sizes = repeated.groupby("ev", sort=False).agg(
        rows=("seq", "size"), seq_first=("seq", "min"), position=("position", "first")
    )
    names = history.observed.journal["event_id"]
    items = []
    for ev, row in sizes.sort_values("seq_first").head(10).iterrows():
        seqs = sorted(repeated.loc[repeated["ev"] == ev, "seq"].tolist())
        shown = ", ".join(str(s) for s in seqs[:5]) + (", ..." if len(seqs) > 5 else "")
        items.append((names.iloc[int(row["position"])], f"posted {row['rows']} times (journal seq {shown})"))
    counts = {
        "journal_rows": len(journal),
        "events_posted": int(journal["ev"].nunique()),
        "events_posted_twice_or_more": len(sizes),
        "extra_rows": int(sizes["rows"].sum() - len(sizes)),
    }
    return verdict(
        name,
        len(sizes),
        "events posted more than once",
        f"{counts['events_posted']} posted events judged",
        counts,
        evidence_for(facts, items),
    )


def no_lost_ack(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Every acknowledged (event id, body) is posted with that body, dead-lettered, or rejected by a business rule.

    A body acknowledged while the id was posted with another body is lost too
    (the API said yes to a conflict and the ledger kept the other body).
    UNKNOWN when events are missing and the drain did not complete: they may still be queued.
    """
    name = "no_lost_ack"
    facts = _facts(history, facts)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    bodies = facts.bodies
    acked = bodies.loc[(bodies["acked"] & bodies["valid"]).to_numpy()]
    journal = facts.journal
    body_keys = acked.index.to_numpy()
    ev = acked["ev"].to_numpy()
    posted = pd.Series(body_keys).isin(journal["body"].to_numpy()).to_numpy()
    id_posted = facts.has_code(ev, journal["ev"].to_numpy())
    dead_lettered = facts.has_code(ev, facts.codes["dead_letters"])
    rejected = facts.has_code(ev, facts.rejected_for(config.rejected_status_values))
    lost = ~posted & ~dead_lettered & ~rejected
    counts = {
        "bodies_acknowledged": len(acked),
        "posted": int(posted.sum()),
        "dead_lettered": int((~posted & dead_lettered).sum()),
        "rejected": int((~posted & ~dead_lettered & rejected).sum()),
        "lost": int(lost.sum()),
        "lost_posted_with_other_body": int((lost & id_posted).sum()),
    }
    events = facts.events
    first_ok = events["first_ok_s"].reindex(ev).to_numpy()
    shown = first_in_order(lost, first_ok)
    items = [
        (
            event_id,
            "acknowledged, but the id was posted with another body (a conflicting body was answered ok)"
            if id_posted[i]
            else "acknowledged, then neither posted, dead-lettered nor rejected",
        )
        for i, event_id in zip(shown, facts.event_ids_of(ev[shown]))
    ]
    judged = f"{len(acked)} acknowledged bodies judged"
    if counts["lost"] and history.meta.drain_completed is False:
        left = history.meta.backlog_left
        return unknown(
            name,
            f"cannot judge: {counts['lost']} acknowledged events are not in the ledger, but the drain did not complete"
            f" (backlog_left={left if left is not None else 'unknown'}); they may still be queued",
            counts,
            evidence=evidence_for(facts, items),
        )
    return verdict(name, counts["lost"], "acknowledged events lost", judged, counts, evidence_for(facts, items))


def no_phantom(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Every journal row was submitted with that body, by a submission that did not definitely fail;
    no body marked invalid is acknowledged or posted."""
    name = "no_phantom"
    facts = _facts(history, facts)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    journal = facts.journal
    bodies = facts.bodies
    position = pd.Index(bodies.index.to_numpy()).get_indexer(journal["body"].to_numpy())
    matched = position >= 0
    take = np.where(matched, position, 0)
    failed = matched & bodies["failed"].to_numpy()[take] if len(bodies) else np.zeros(len(journal), bool)
    invalid = matched & ~bodies["valid"].to_numpy()[take] if len(bodies) else np.zeros(len(journal), bool)
    known_id = facts.has_code(journal["ev"].to_numpy(), facts.events.index.to_numpy())
    never = ~known_id
    other_body = known_id & ~matched
    posted_invalid = invalid
    posted_failed = failed & ~invalid
    invalid_acked = bodies.loc[(bodies["acked"] & ~bodies["valid"]).to_numpy()]

    problems = np.full(len(journal), "", dtype=object)
    problems[posted_failed] = "posted, although every submission of this body was answered fail"
    problems[posted_invalid] = "posted a body the client sent as invalid on purpose"
    problems[other_body] = "posted with a body that was never submitted under this id"
    problems[never] = "posted, but this event id was never submitted"
    bad = never | other_body | posted_invalid | posted_failed
    names = history.observed.journal["event_id"]
    items = [
        (names.iloc[i], f"{problems[i]} (journal seq {journal['seq'].iloc[i]})")
        for i in first_in_order(bad, journal["seq"].to_numpy())
    ]
    for event_id in facts.event_ids_of(invalid_acked["ev"].to_numpy()[:10]):
        items.append((event_id, "a body sent as invalid on purpose was answered ok"))
    counts = {
        "journal_rows": len(journal),
        "never_submitted": int(never.sum()),
        "body_never_submitted": int(other_body.sum()),
        "posted_after_fail": int(posted_failed.sum()),
        "posted_invalid_body": int(posted_invalid.sum()),
        "invalid_body_acknowledged": len(invalid_acked),
    }
    violations = int(bad.sum()) + len(invalid_acked)
    return verdict(
        name,
        violations,
        "phantom postings or invalid bodies accepted",
        f"{len(journal)} journal rows judged",
        counts,
        evidence_for(facts, items),
    )


def dead_letters_accounted(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Each dead letter has a reason and matches an accepted event (answered ok or indeterminate),
    and was not posted as well."""
    name = "dead_letters_accounted"
    facts = _facts(history, facts)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    letters = history.observed.dead_letters.reset_index(drop=True)
    ev = facts.codes["dead_letters"]
    reason = letters["reason"]
    no_reason = (reason.isna() | (reason.str.strip() == "")).to_numpy(dtype=bool, na_value=True)
    events = facts.events
    known = facts.has_code(ev, events.index.to_numpy())
    accepted = facts.has_code(ev, events.index.to_numpy()[events["accepted"].to_numpy()])
    posted = facts.has_code(ev, facts.journal["ev"].to_numpy())
    problems = np.full(len(letters), "", dtype=object)
    problems[posted] = "dead-lettered, and also posted in the journal"
    problems[known & ~accepted] = "dead-lettered, but every submission was answered fail"
    problems[~known] = "dead-lettered, but this event id was never submitted"
    problems[no_reason] = "dead-lettered without a reason"
    bad = no_reason | ~accepted | posted
    items = [(letters["event_id"].iloc[i], problems[i]) for i in np.flatnonzero(bad)[:10]]
    counts = {
        "dead_letters": len(letters),
        "without_reason": int(no_reason.sum()),
        "never_submitted": int((~known).sum()),
        "never_accepted": int((known & ~accepted).sum()),
        "also_posted": int(posted.sum()),
    }
    return verdict(
        name,
        int(bad.sum()),
        "dead letters unaccounted",
        f"{len(letters)} dead letters judged",
        counts,
        evidence_for(facts, items),
    )
