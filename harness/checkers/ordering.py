"""The per-key real-time ordering checker: if A was acknowledged before B was invoked (same key), A applies before B.

Why real time and not submission order: only an acknowledgement that came
back before B was even sent obliges the system to order A first; events that
overlapped in time may apply in either order. Concretely, for two posted events
A and B of the same ordering key (the journal's key), with A's first `ok`
completion earlier than B's first invoke that could have taken effect, A's
journal seq must be below B's. An attempt that definitely did nothing (a 4xx
or 429/503 answer: `fail`) is not B's start: B's retry after A's acknowledgement
is obliged to follow A. An indeterminate attempt (`info`, no answer) may have
enqueued B, so it counts. A B whose every attempt failed, yet was posted
(no_phantom's business), is placed by its first invoke.
An event posted twice is placed by its first (lowest) seq; the second row is
no_double_posting's business. Only journal rows with a key are judged.

Vectorised: per key, events sorted by acknowledgement time carry a running
maximum of seq; each B looks up (as-of join) the largest seq among events
acknowledged before its first invoke. B is out of order when that seq is above
its own. Cost O(n log n).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.checkers.common import evidence_for, first_in_order, needs_observation, not_judged, verdict
from harness.checkers.config import CheckConfig
from harness.checkers.facts import Facts, hash_column
from harness.checkers.verdict import Verdict
from harness.history.schema import History

__all__ = ["ordering"]


def ordering(history: History, config: CheckConfig, facts: Facts | None = None) -> Verdict:
    """Per key: an event acknowledged before another was first invoked has the lower journal seq."""
    name = "ordering"
    facts = facts if facts is not None else Facts(history)
    lacking = needs_observation(name, facts)
    if lacking:
        return lacking
    observed = history.observed.journal
    keyed = observed["key"].notna().to_numpy(dtype=bool, na_value=False)
    journal = facts.journal.assign(key_h=hash_column(observed["key"]), position=np.arange(len(observed)))
    journal = journal.loc[keyed].sort_values("seq", kind="stable")
    # An event posted twice is placed by its first row (lowest seq).
    placed = journal.drop_duplicates("ev", keep="first").set_index("ev")[["seq", "key_h", "position"]]
    events = facts.events
    both = placed.join(events[["row", "first_invoke_s", "first_ok_s", "first_effective_s"]], how="inner")
    both = both.reset_index()
    # B's start: its first attempt that could have taken effect (see the module docstring).
    both["first_invoke_s"] = both["first_effective_s"].fillna(both["first_invoke_s"])
    acked = both.loc[both["first_ok_s"].notna().to_numpy(), ["key_h", "first_ok_s", "seq"]]
    acked = acked.sort_values("first_ok_s", kind="stable")
    acked["seq_max_before"] = acked.groupby("key_h", sort=False)["seq"].cummax()
    probes = both[["key_h", "first_invoke_s", "seq"]].sort_values("first_invoke_s", kind="stable")
    probes["row"] = probes.index.to_numpy()
    joined = pd.merge_asof(
        probes,
        acked[["key_h", "first_ok_s", "seq_max_before"]],
        left_on="first_invoke_s",
        right_on="first_ok_s",
        by="key_h",
        allow_exact_matches=False,
    )
    late = (joined["seq_max_before"] > joined["seq"]).to_numpy(dtype=bool, na_value=False)
    rows = joined["row"].to_numpy()[late]
    bad = np.zeros(len(both), dtype=bool)
    bad[rows] = True
    items = []
    names = observed["event_id"]
    for i in first_in_order(bad, both["first_invoke_s"].to_numpy()):
        b = both.iloc[i]
        same = both.loc[
            (both["key_h"] == b["key_h"]) & (both["first_ok_s"] < b["first_invoke_s"]) & (both["seq"] > b["seq"])
        ].sort_values("first_ok_s")
        a = same.iloc[0]
        a_id, b_id = names.iloc[int(a["position"])], names.iloc[int(b["position"])]
        key = observed["key"].iloc[int(b["position"])]
        items.append(
            (
                b_id,
                f"key {key}: applied at seq {int(b['seq'])} before {a_id} (seq {int(a['seq'])}), "
                f"which was acknowledged at {a['first_ok_s']:.6f} s, before this event's first attempt "
                f"that could take effect was invoked at {b['first_invoke_s']:.6f} s",
            )
        )
        items.append((a_id, f"key {key}: acknowledged first, applied after {b_id}"))
    counts = {
        "events_judged": len(both),
        "keys": int(both["key_h"].nunique()),
        "events_applied_too_early": int(bad.sum()),
    }
    if len(both) == 0:
        return not_judged(name, "no posted event with an acknowledged submit to order", counts)
    return verdict(
        name,
        int(bad.sum()),
        "events applied before an event acknowledged before they were invoked",
        f"{len(both)} posted events on {counts['keys']} keys judged",
        counts,
        evidence_for(facts, items),
    )
