"""Prometheus text exposition, written by hand: counters, gauges and fixed-bucket histograms.

Why by hand: the format is small and stable, and the consumers' counters have
to travel through Redis anyway (the API aggregates the whole system), so a
client library would buy little. Consumers publish deltas with HINCRBY, which
keeps the totals monotonic across consumer restarts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Histogram",
    "Family",
    "render",
    "INGEST_BUCKETS_S",
    "E2E_BUCKETS_S",
]

INGEST_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
E2E_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    """Cumulative-on-render histogram; `counts[i]` holds observations in bucket i only (last: +Inf)."""

    buckets_s: Sequence[float]
    counts: list[int] = field(default_factory=list)
    sum_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets_s) + 1)

    def observe(self, value_s: float) -> None:
        index = len(self.buckets_s)
        for i, bound in enumerate(self.buckets_s):
            if value_s <= bound:
                index = i
                break
        self.counts[index] += 1
        self.sum_s += value_s

    def add(self, counts: Sequence[int], sum_s: float) -> None:
        for i, n in enumerate(counts[: len(self.counts)]):
            self.counts[i] += int(n)
        self.sum_s += sum_s

    def take(self) -> tuple[list[int], float]:
        """Return and reset (for publishing deltas)."""
        counts, total = self.counts, self.sum_s
        self.counts, self.sum_s = [0] * (len(self.buckets_s) + 1), 0.0
        return counts, total

    def samples(self, name: str, labels: Mapping[str, str] | None = None) -> list[tuple[str, dict, float]]:
        labels = dict(labels or {})
        out: list[tuple[str, dict, float]] = []
        running = 0
        for bound, n in zip(self.buckets_s, self.counts):
            running += n
            out.append((name + "_bucket", {**labels, "le": _num(bound)}, running))
        running += self.counts[-1]
        out.append((name + "_bucket", {**labels, "le": "+Inf"}, running))
        out.append((name + "_sum", labels, self.sum_s))
        out.append((name + "_count", labels, running))
        return out


@dataclass
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, dict, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((self.name, labels, value))
        return self


def _num(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(families: Iterable[Family]) -> bytes:
    """Text format 0.0.4: HELP, TYPE, then one line per sample."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for name, labels, value in family.samples:
            if labels:
                text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
                lines.append(f"{name}{{{text}}} {_num(value)}")
            else:
                lines.append(f"{name} {_num(value)}")
    return ("\n".join(lines) + "\n").encode()
