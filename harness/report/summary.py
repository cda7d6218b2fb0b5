"""summary.json: the run's machine-readable verdicts, figures, identity and replay command (schema_version 1).

Why one dict built once: junit.xml, report.html, summary.md, `ledgerchaos compare`
and the suite index all read the same summary, so no two files can disagree
about a verdict or a figure. The format is documented in docs/summary-schema.json;
a change that breaks readers bumps SUMMARY_SCHEMA_VERSION.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.checkers.judge import verdict_entries
from harness.checkers.verdict import Validity
from harness.checkers.verdict import exit_code as verdicts_exit_code
from harness.history.schema import History
from harness.report.figures import run_figures
from harness.report.series import fault_windows
from harness.report.versions import recorded_versions

__all__ = [
    "SUMMARY_SCHEMA_VERSION",
    "SUMMARY_FILE",
    "RESOLVED_SCENARIO_FILE",
    "EXIT_INCOMPLETE",
    "build_summary",
    "replay_command",
    "summary_json_text",
    "jsonable",
]

SUMMARY_SCHEMA_VERSION = 1
SUMMARY_FILE = "summary.json"
RESOLVED_SCENARIO_FILE = "scenario.resolved.yaml"
EXIT_INCOMPLETE = 3
NOTES_MAX = 100  # notes kept from meta; a run that wrote more has a problem the first hundred show


def replay_command(run_dir: Path, seed: int) -> str:
    """The command that replays the run: its resolved scenario with its seed."""
    return f"ledgerchaos run {shlex.quote(str(Path(run_dir) / RESOLVED_SCENARIO_FILE))} --seed {int(seed)}"


def build_summary(run_dir: Path, history: History, verdicts: tuple, config=None, now: datetime | None = None) -> dict:
    """The summary.json object. config: the CheckConfig the verdicts were judged with (None: defaults,
    which allow no unknown). An incomplete run's exit code is 3 whatever its verdicts."""
    meta = history.meta
    allowed = frozenset(config.allow_unknown) if config is not None else frozenset()
    verdicts = tuple(verdicts)
    judged_code = verdicts_exit_code(verdicts, allowed)
    code = judged_code if meta.complete else EXIT_INCOMPLETE
    entries = verdict_entries(verdicts, allowed)
    counts = {v.value: sum(1 for x in verdicts if x.validity is v) for v in Validity}
    counts["unknown_allowed"] = sum(1 for e in entries if e["allowed_unknown"])
    counts["judged"] = sum(1 for x in verdicts if x.validity is not Validity.NOT_JUDGED)
    if not meta.complete:
        outcome = "incomplete"
    elif counts["invalid"]:
        outcome = "violated"
    elif judged_code:
        outcome = "unknown"  # an unknown not allowed, or nothing judged at all
    else:
        outcome = "pass"
    summary = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run_id": meta.run_id,
        "scenario": meta.scenario or meta.run_id,
        "seed": int(meta.seed),
        "complete": bool(meta.complete),
        "gaps": [g.value for g in meta.gaps],
        "notes": [str(n) for n in meta.notes[:NOTES_MAX]],
        "outcome": outcome,
        "exit_code": code,
        "replay_command": replay_command(run_dir, meta.seed),
        "run_dir": str(run_dir),
        "generated_at_utc": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verdict_counts": counts,
        "verdicts": entries,
        "figures": run_figures(history, verdicts),
        "faults": [w.to_json() for w in fault_windows(history)],
        "phases": [{"name": p.name, "start_s": p.start_s, "end_s": p.end_s} for p in meta.phases],
        "versions": recorded_versions(meta.extra),
        "check_config": config.to_json() if config is not None else None,
    }
    return jsonable(summary)


def judged_sentence(summary: Mapping) -> str:
    """ "7 judged, all hold; 3 not judged" from a summary's verdict_counts (the report's closing line)."""
    counts = summary.get("verdict_counts") or {}
    not_judged = int(counts.get("not_judged", 0))
    judged = int(counts.get("judged", sum(int(counts.get(k, 0)) for k in ("valid", "invalid", "unknown"))))
    valid = int(counts.get("valid", 0))
    if judged == 0:
        head = "nothing judged"
    elif valid == judged:
        head = f"{judged} judged, all hold"
    else:
        head = f"{judged} judged, {valid} hold"
    return head + (f"; {not_judged} not judged" if not_judged else "")


def jsonable(value: Any) -> Any:
    """value with non-finite floats as None, numpy scalars as Python ones, and anything else
    JSON cannot hold as its text (evidence ops may carry such values)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def summary_json_text(summary: dict) -> str:
    """The file's text: indented, keys in a stable order, strictly valid JSON (no NaN)."""
    return json.dumps(summary, indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False) + "\n"
