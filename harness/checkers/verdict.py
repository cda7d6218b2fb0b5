"""Verdicts: what a checker says about a history (valid, invalid, unknown or not judged) with counts and evidence.

Why these values (Jepsen's :valid? true / false / :unknown, and one more): a
checker that lacks the data it needs, or crashes, must not pass (unknown); a
checker with nothing to judge (no bound set, nothing of its kind in the history)
must not look like a pass either (not judged: it never fails the gate, never
counts as a pass, and a scenario that requires it turns it into unknown). Evidence names the first
offending event ids with their ops from the history, so a person can follow one
bad event through the run.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Validity", "JUDGED", "Evidence", "Verdict", "exit_code", "EVIDENCE_MAX", "EVIDENCE_OPS_MAX"]

EVIDENCE_MAX = 10  # evidence items per verdict; the total is in counts
EVIDENCE_OPS_MAX = 8  # ops shown per evidence item (an event's first few attempts and answers)


class Validity(str, enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"
    NOT_JUDGED = "not_judged"  # nothing to judge; the summary says why


JUDGED = frozenset({Validity.VALID, Validity.INVALID, Validity.UNKNOWN})


@dataclass(frozen=True)
class Evidence:
    """One offending event: its id (None when the problem has no event, e.g. a balance), what is wrong,
    and its ops from the history as plain dicts (NA fields left out)."""

    event_id: str | None
    problem: str
    ops: tuple = ()

    def to_json(self) -> dict:
        return {"event_id": self.event_id, "problem": self.problem, "ops": [dict(op) for op in self.ops]}


@dataclass(frozen=True)
class Verdict:
    """One checker's judgement. counts: whole numbers (events judged, violations...);
    figures: measurements (latency_ms_p99, recovery_s...)."""

    name: str
    validity: Validity
    summary: str
    counts: Mapping[str, int] = field(default_factory=dict)
    figures: Mapping[str, float] = field(default_factory=dict)
    evidence: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "validity", Validity(self.validity))
        object.__setattr__(self, "counts", {k: int(v) for k, v in self.counts.items()})
        object.__setattr__(self, "figures", {k: float(v) for k, v in self.figures.items()})
        object.__setattr__(self, "evidence", tuple(self.evidence)[:EVIDENCE_MAX])

    @property
    def valid(self) -> bool:
        return self.validity is Validity.VALID

    def to_json(self) -> dict:
        """A JSON-ready dict (summary.json); a figure that is not finite becomes null."""
        return {
            "name": self.name,
            "validity": self.validity.value,
            "summary": self.summary,
            "counts": dict(self.counts),
            "figures": {k: (v if math.isfinite(v) else None) for k, v in self.figures.items()},
            "evidence": [e.to_json() for e in self.evidence],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            name=data["name"],
            validity=Validity(data["validity"]),
            summary=data.get("summary", ""),
            counts=data.get("counts", {}),
            figures={k: (math.nan if v is None else v) for k, v in data.get("figures", {}).items()},
            evidence=tuple(
                Evidence(e.get("event_id"), e.get("problem", ""), tuple(e.get("ops", ())))
                for e in data.get("evidence", ())
            ),
        )


def exit_code(verdicts: Iterable[Verdict], allow_unknown: Iterable[str] = frozenset()) -> int:
    """0 when every judged verdict is valid (or unknown and its name is in allow_unknown), else 1.

    Not judged verdicts are passed over; no judged verdict at all is 1: nothing judged is not a pass.
    """
    allowed = frozenset(allow_unknown)
    verdicts = tuple(v for v in verdicts if v.validity is not Validity.NOT_JUDGED)
    if not verdicts:
        return 1
    for verdict in verdicts:
        if verdict.validity is Validity.VALID:
            continue
        if verdict.validity is Validity.UNKNOWN and verdict.name in allowed:
            continue
        return 1
    return 0
