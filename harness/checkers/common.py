"""Small helpers every checker uses to phrase a verdict: unknown-for-lack-of-data, evidence with ops, counts.

Why shared: every verdict must read alike in the report, and the rule
"lacking data is UNKNOWN, never VALID" is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from harness.checkers.facts import Facts
from harness.checkers.verdict import EVIDENCE_MAX, Evidence, Validity, Verdict

__all__ = ["unknown", "not_judged", "needs_observation", "needs_ops", "evidence_for", "verdict", "first_in_order"]


def unknown(
    name: str,
    reason: str,
    counts: Mapping[str, int] | None = None,
    figures: Mapping[str, float] | None = None,
    evidence: tuple = (),
) -> Verdict:
    return Verdict(name, Validity.UNKNOWN, reason, counts or {}, figures or {}, evidence)


def not_judged(
    name: str, reason: str, counts: Mapping[str, int] | None = None, figures: Mapping[str, float] | None = None
) -> Verdict:
    """Nothing to judge (no bound set, nothing of its kind in the history): said, never shown as a pass."""
    return Verdict(name, Validity.NOT_JUDGED, f"not judged: {reason}", counts or {}, figures or {}, ())


def needs_observation(name: str, facts: Facts) -> Verdict | None:
    """UNKNOWN when the history has no client op or the ledger was not observed after the drain; else None."""
    return needs_ops(name, facts) or (
        unknown(name, "cannot judge: the ledger was not observed after the drain (history has no observation)")
        if facts.history.observation is None
        else None
    )


def needs_ops(name: str, facts: Facts) -> Verdict | None:
    """UNKNOWN when the history holds no client op: nothing was tested, which is not a pass."""
    client, invoke = facts.client_masks
    if not (client & invoke).any():
        return unknown(name, "cannot judge: the history holds no client op (nothing was sent)")
    return None


def evidence_for(facts: Facts, items: Iterable[tuple[str | None, str]]) -> tuple:
    """Evidence for the first EVIDENCE_MAX (event_id, problem) items, each with the event's ops."""
    chosen = []
    for item in items:
        chosen.append(item)
        if len(chosen) >= EVIDENCE_MAX:
            break
    ops = facts.ops_of(e for e, _ in chosen if e is not None)
    return tuple(Evidence(e, problem, ops.get(e, ()) if e is not None else ()) for e, problem in chosen)


def verdict(
    name: str,
    violations: int,
    what: str,
    judged: str,
    counts: Mapping[str, int],
    evidence: tuple = (),
    figures: Mapping[str, float] | None = None,
) -> Verdict:
    """VALID when violations == 0, else INVALID; the summary says how many of what."""
    if violations == 0:
        return Verdict(name, Validity.VALID, f"holds: {judged}", counts, figures or {}, ())
    return Verdict(name, Validity.INVALID, f"violated: {what}: {violations}; {judged}", counts, figures or {}, evidence)


def first_in_order(mask: np.ndarray, order: np.ndarray | Sequence[float]) -> np.ndarray:
    """Positions where mask is true, earliest `order` first (at most EVIDENCE_MAX of them)."""
    positions = np.flatnonzero(mask)
    if len(positions) == 0:
        return positions
    ranked = positions[np.argsort(np.asarray(order)[positions], kind="stable")]
    return ranked[:EVIDENCE_MAX]
