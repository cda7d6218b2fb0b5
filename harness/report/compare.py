"""`ledgerchaos compare RUN_A RUN_B`: what got better or worse between two runs, from their summary.json.

Why from the summaries and not the histories: comparing is cheap and works on
report folders kept as CI artifacts (the histories may be gone). A regression
gates (exit 1): latency up or throughput down by more than threshold_pct, or a
verdict that held in A and does not in B (invalid, unknown, or missing).
Other figures (recovery, drain, backlog) are shown but do not gate: they move
with load and faults more than with the code.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from harness.errors import UsageError
from harness.report.summary import SUMMARY_FILE, SUMMARY_SCHEMA_VERSION

__all__ = ["Change", "compare_summaries", "compare_command", "read_summary", "GATED_FIGURES", "SUMMARY_BYTES_MAX"]

SUMMARY_BYTES_MAX = 50_000_000
THRESHOLD_PCT_MAX = 10_000.0
# figure -> +1 when higher is worse, -1 when lower is worse.
GATED_FIGURES: Mapping[str, int] = {
    "latency_ms_p50": +1,
    "latency_ms_p95": +1,
    "latency_ms_p99": +1,
    "throughput_per_s_accepted": -1,
    "throughput_per_s_posted": -1,
}
SHOWN_FIGURES: Mapping[str, int] = {
    "throughput_per_s_offered": 0,
    "ops_indeterminate": +1,
    "backlog_events_peak": +1,
    "drain_s": +1,
}
_HOLDS = "valid"


@dataclass(frozen=True)
class Change:
    """One line of the comparison. kind: "figure" or "verdict"; verdict: "worse", "better", "same" or "info"."""

    kind: str
    name: str
    before: object | None
    after: object | None
    change_pct: float | None
    verdict: str
    regression: bool


def read_summary(run_dir: Path) -> dict:
    """A run folder's summary.json; UsageError (exit 2) naming the file when absent or not a summary."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        raise UsageError(f"{path}: missing; write the report first with `ledgerchaos report {run_dir}`")
    if path.stat().st_size > SUMMARY_BYTES_MAX:
        raise UsageError(f"{path}: larger than {SUMMARY_BYTES_MAX} bytes; not a summary")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema_version") != SUMMARY_SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise UsageError(
            f"{path}: schema_version is {found!r}; this ledgerchaos reads version {SUMMARY_SCHEMA_VERSION}"
        )
    return data


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def compare_summaries(a: Mapping, b: Mapping, threshold_pct: float = 10.0) -> list[Change]:
    """Figure and verdict changes from a to b; regression=True on the ones that gate."""
    if not (isinstance(threshold_pct, (int, float)) and 0 <= threshold_pct <= THRESHOLD_PCT_MAX):
        raise UsageError(f"threshold_pct: {threshold_pct!r} is outside [0, {THRESHOLD_PCT_MAX:g}]; e.g. 10 for 10 %")
    changes: list[Change] = []
    fa, fb = a.get("figures") or {}, b.get("figures") or {}
    for name, worse_sign in {**GATED_FIGURES, **SHOWN_FIGURES}.items():
        before, after = _number(fa.get(name)), _number(fb.get(name))
        if before is None and after is None:
            continue
        pct = None
        if before is not None and after is not None and before != 0:
            pct = (after - before) / abs(before) * 100.0
        elif before == 0 and after == 0:
            pct = 0.0
        direction = "info"
        regression = False
        if worse_sign and pct is not None:
            signed = pct * worse_sign
            direction = "worse" if signed > 0 else ("better" if signed < 0 else "same")
            regression = name in GATED_FIGURES and signed > threshold_pct
        changes.append(Change("figure", name, before, after, pct, direction, regression))
    verdicts_a = {v.get("name"): v for v in a.get("verdicts") or ()}
    verdicts_b = {v.get("name"): v for v in b.get("verdicts") or ()}
    for name in list(verdicts_a) + [n for n in verdicts_b if n not in verdicts_a]:
        before = verdicts_a.get(name, {}).get("validity", "missing")
        after = verdicts_b.get(name, {}).get("validity", "missing")
        if before == after:
            direction = "same"
        elif after == _HOLDS:
            direction = "better"
        else:
            direction = "worse"
        regression = before == _HOLDS and after != _HOLDS
        changes.append(Change("verdict", str(name), before, after, None, direction, regression))
    return changes


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def compare_command(run_a: Path, run_b: Path, threshold_pct: float = 10.0, out: TextIO | None = None) -> int:
    """Print the comparison; 1 when a regression passes the threshold, else 0; UsageError (2) when a folder
    has no readable summary.json. out: where to print (None: sys.stdout at call time)."""
    out = out if out is not None else sys.stdout
    a, b = read_summary(run_a), read_summary(run_b)
    changes = compare_summaries(a, b, threshold_pct)
    print(f"A: {a.get('run_id')} ({a.get('outcome')}, seed {a.get('seed')})", file=out)
    print(f"B: {b.get('run_id')} ({b.get('outcome')}, seed {b.get('seed')})", file=out)
    if a.get("scenario") != b.get("scenario"):
        print(
            f"note: different scenarios ({a.get('scenario')} vs {b.get('scenario')}); figures may not be comparable",
            file=out,
        )
    for note, summary in (("A", a), ("B", b)):
        if not summary.get("complete", False):
            print(f"note: run {note} is INCOMPLETE; its figures describe a partial run", file=out)
    print(f"{'':2}{'what':32} {'A':>12} {'B':>12} {'change':>9}  verdict", file=out)
    for c in changes:
        pct = f"{c.change_pct:+.1f}%" if c.change_pct is not None else ""
        flag = "!!" if c.regression else "  "
        print(f"{flag}{c.name:32} {_show(c.before):>12} {_show(c.after):>12} {pct:>9}  {c.verdict}", file=out)
    regressions = [c for c in changes if c.regression]
    if regressions:
        names = ", ".join(c.name for c in regressions)
        print(f"REGRESSION (threshold {threshold_pct:g} %): {names}", file=out)
        return 1
    print(f"no regression beyond {threshold_pct:g} %", file=out)
    return 0
